// The one event model: what an accepted event is as it travels from the producer through the
// queue to the aggregator, and the one table of limits the edge validator and the consumer's
// guard both apply. The client builds from this module too.

/** An accepted event as it travels through the queue to the aggregator. */
export interface QueuedEvent {
	id: string;
	event: string;
	/** Epoch milliseconds. */
	timestamp: number;
	userId?: string;
	sessionId?: string;
	/** The tenant's own customer the event is billed to: usage and meters are kept per customer. */
	customerId?: string;
	/** The route pattern ("/v1/items/:id") a request event was served by, never its raw path. */
	route?: string;
	/** ISO 3166-1 alpha-2 country (Cloudflare's "XX" unknown and "T1" Tor included). */
	country?: string;
	properties?: Record<string, unknown>;
	performance?: { duration?: number; statusCode?: number };
	/** Quantity in integer micro-units, so sums are exact. */
	usage?: { sku: string; unit: string; micros: number };
}

/** One queue message: a slice of one tenant's events. */
export interface EventsMessage {
	v: 1;
	tenant: string;
	events: QueuedEvent[];
}

/** A slice's events as the consumer hands them to the aggregator: the JSON of each message's events array. */
export interface EventsJson {
	json: string[];
}

const DAY_MS = 86_400_000;

/** Bounds on a request and on time, for the validator and everything that sizes by it. */
export const EVENT_LIMITS = {
	maxEventsPerBatch: 1000,
	maxBodyBytes: 1_048_576,
	maxPropertiesBytes: 32 * 1024,
	maxDepth: 16,
	/** The oldest timestamp the edge accepts. */
	maxPastMs: 35 * DAY_MS,
	maxFutureMs: 5 * 60_000,
	/**
	 * How long after the edge accepted an event it may still reach its aggregator (queue retries,
	 * spills, dead-letter replays). Ids are remembered by event time for maxPastMs + this, so
	 * every copy an aggregator can still receive is checked against them.
	 */
	deliveryGraceMs: 7 * DAY_MS,
} as const;

/**
 * Every field's bounds, once: string lengths in characters, numbers inclusive. The validator and
 * the consumer's guard both read this table, so the two can never disagree.
 */
export const FIELD_LIMITS = {
	id: { min: 1, max: 128 },
	event: { min: 1, max: 200 },
	userId: { min: 0, max: 256 },
	sessionId: { min: 0, max: 256 },
	customerId: { min: 1, max: 256 },
	route: { min: 1, max: 200 },
	country: { min: 2, max: 2 },
	"usage.sku": { min: 1, max: 128 },
	"usage.unit": { min: 1, max: 32 },
	/** A day: bounds every duration, so no sum of them can reach Infinity. */
	"performance.duration": { min: 0, max: DAY_MS },
	"performance.statusCode": { min: 100, max: 599 },
} as const;

export type StringField = "id" | "event" | "userId" | "sessionId" | "customerId" | "route" | "country" | "usage.sku" | "usage.unit";

/** A country code as Cloudflare reports it: two capital letters or digits ("DE", "XX", "T1"). */
export const COUNTRY = /^[A-Z0-9]{2}$/;

/** How long an aggregator remembers event ids, by event time. */
export const DEDUPE_WINDOW_MS = EVENT_LIMITS.maxPastMs + EVENT_LIMITS.deliveryGraceMs;

export const EVENT_FIELDS: ReadonlySet<string> = new Set([
	"id",
	"event",
	"timestamp",
	"userId",
	"sessionId",
	"customerId",
	"route",
	"country",
	"properties",
	"performance",
	"usage",
]);
export const PERFORMANCE_FIELDS: ReadonlySet<string> = new Set(["duration", "statusCode"]);
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);
export const REDACTED = "[redacted]";
