// The client's public types: structural, so neither Workers nor Node types are needed to use it.

/** What the client needs of an ExecutionContext: a way to keep sends alive after the response. */
export interface ContextLike {
	waitUntil(promise: Promise<unknown>): void;
}

/** What the client needs of a Queue producer binding (env.EVENTS). */
export interface QueueLike {
	sendBatch(messages: Iterable<{ body: unknown; contentType?: "json" | "text" }>, options?: unknown): Promise<unknown>;
}

/** What the client needs of a service binding to Meterline's `MeterlineIngest` entrypoint. */
export interface ServiceLike {
	ingest(events: MeterlineEvent[], writeKey: string): Promise<unknown>;
}

/** `fetch` as the endpoint transport calls it: one Request in, one Response out. */
export type FetchLike = (request: Request) => Promise<Response>;

/** Straight to Meterline's queue, as its producer would send: the Worker must be trusted with the tenant. */
export interface QueueTransport {
	queue: QueueLike;
	tenant: string;
}

/** Over a service binding by RPC: `ingest(events, writeKey)`, validated and rate limited like HTTP. */
export interface ServiceTransport {
	service: ServiceLike;
	writeKey: string;
}

/** Over HTTP: POST {endpoint}/v1/events with the write key as a Bearer token. */
export interface EndpointTransport {
	/** The Meterline origin (and base path, if any), e.g. "https://meterline.example.com". */
	endpoint: string;
	writeKey: string;
	/** Defaults to globalThis.fetch. */
	fetch?: FetchLike;
}

export type Transport = QueueTransport | ServiceTransport | EndpointTransport;

export type Properties = Record<string, unknown>;

/** An event as POST /v1/events and `ingest()` accept it. */
export interface MeterlineEvent {
	id: string;
	event: string;
	/** Epoch milliseconds. */
	timestamp: number;
	userId?: string;
	sessionId?: string;
	/** Your customer the event is billed to. */
	customerId?: string;
	/** The route pattern ("/v1/items/:id") of a request event. */
	route?: string;
	/** ISO 3166-1 alpha-2 country of the end user. */
	country?: string;
	properties?: Properties;
	performance?: { duration?: number; statusCode?: number };
	/** A quantity with a fraction at or above 2^33 must be a decimal string to stay exact. */
	usage?: { sku: string; quantity: number | string; unit?: string };
}

/** Where a problem happened: a call with bad arguments, an event that failed validation, a send. */
export type ErrorStage = "track" | "validate" | "send" | "schedule";

export interface ErrorInfo {
	stage: ErrorStage;
	/** How many events the problem cost (0 when none were lost). */
	events: number;
}

export interface AnalyticsOptions {
	/** Events per send; a full batch is sent at once. Default 20, at most 1000. */
	batchSize?: number;
	/** Milliseconds after the first unsent event that a partial batch is sent. Default 1000; 0 turns the timer off. */
	flushInterval?: number;
	/** Unsent events held at most; beyond it the oldest is dropped and counted. Default 1000. */
	maxQueue?: number;
	/** Property keys whose values become "[redacted]", at any depth, matched case-insensitively. */
	redact?: readonly string[];
	/** Properties added to every event; an event's own properties win. */
	defaults?: Properties;
	/** Sent with every event, until identify() names another user. */
	userId?: string;
	sessionId?: string;
	/** Your customer every event is billed to, unless a call names its own. */
	customerId?: string;
	/** The end user's ISO 3166-1 alpha-2 country (`request.cf.country`), sent with every event. */
	country?: string;
	/** Further attempts after a failed send. Default 3. */
	retries?: number;
	/** The first backoff in milliseconds, doubled each attempt. Default 100. */
	retryDelay?: number;
	/** The longest wait before a retry; a Retry-After beyond it ends the retries. Default 10000. */
	maxRetryDelay?: number;
	/** Hears of every problem; the client never throws. Defaults to console.error. */
	onError?: (error: unknown, info: ErrorInfo) => void;
}

/**
 * Running counts. `queued` is events tracked but not yet settled (held or in flight); the others
 * only grow: `sent` were accepted by the transport, `failed` were lost to a failed send, and
 * `dropped` were never sent (maxQueue overflow or invalid input).
 */
export interface AnalyticsStats {
	queued: number;
	sent: number;
	dropped: number;
	failed: number;
}

/** Who one call's event is for, instead of the client's own customerId and userId. */
export interface EventOptions {
	/** The customer this event is billed to. */
	customerId?: string;
	userId?: string;
}

export interface Analytics {
	/** Records an event. Cheap and synchronous: building, redaction and sending happen later. */
	track(event: string, properties?: Properties, options?: EventOptions): void;
	/** Records "$identify" for the user, and sends later events as that user. */
	identify(userId: string, traits?: Properties): void;
	/** Records a metered "$usage" event: `quantity` of `sku`, in `unit` (default "unit"). */
	usage(sku: string, quantity: number | string, unit?: string, options?: EventOptions): void;
	/** The same, in the default unit: `usage(sku, quantity, { customerId })`. */
	usage(sku: string, quantity: number | string, options: EventOptions): void;
	/** Records "$error" with {name, message, stackHash} and statusCode 500, so it counts as an error. */
	trackError(error: unknown, context?: Properties, options?: EventOptions): void;
	/** Records an event with performance.duration in milliseconds. */
	trackPerformance(name: string, durationMs: number, properties?: Properties, options?: EventOptions): void;
	/** Sends every held event, inside ctx.waitUntil. Need not be awaited; returns nothing. */
	flush(): void;
	stats(): AnalyticsStats;
}
