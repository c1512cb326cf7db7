// The benchmark's shared plumbing: the events it sends, counted calls against the pipeline,
// polling, and the estimate of queue message sizes (mirroring src/producer/pack.ts).
import type { LocalPipeline, TenantKeys } from "../scripts/local-pipeline.ts";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Event names the benchmark's traffic is spread over (5 rollup rows per minute per tenant). */
export const EVENT_NAMES = ["page_view", "api_call", "signup", "checkout", "search"] as const;

export interface WireEvent {
	id?: string;
	event: string;
	timestamp?: number;
	userId: string;
	customerId?: string;
	properties: Record<string, unknown>;
	performance: { duration: number; statusCode: number };
	usage: { sku: string; quantity: number; unit: string };
}

/**
 * The i-th event of the benchmark's traffic: a realistic product event with properties, timing and
 * one metered usage. Without `id` the server assigns a UUIDv7, so a reused body is still new events.
 */
export function benchEvent(i: number, options: { id?: string; timestamp?: number; sku?: string; customerId?: string } = {}): WireEvent {
	const event: WireEvent = {
		event: EVENT_NAMES[i % EVENT_NAMES.length]!,
		userId: `user-${i % 100}`,
		properties: { path: `/app/page-${i % 20}`, plan: i % 3 === 0 ? "pro" : "free", referrer: "https://example.com/" },
		performance: { duration: (i % 250) + 0.5, statusCode: i % 97 === 0 ? 500 : 200 },
		usage: { sku: options.sku ?? "api_calls", quantity: 1, unit: "call" },
	};
	if (options.id !== undefined) event.id = options.id;
	if (options.timestamp !== undefined) event.timestamp = options.timestamp;
	if (options.customerId !== undefined) event.customerId = options.customerId;
	return event;
}

/** A POST /v1/events body of `size` events with server-assigned ids (reusable: every send is new events). */
export function batchBody(size: number, sku = "api_calls"): string {
	return JSON.stringify({ events: Array.from({ length: size }, (_, i) => benchEvent(i, { sku })) });
}

/** Queues limits the producer packs to (src/producer/pack.ts QUEUE_LIMITS.messageBytes). */
const MESSAGE_BYTES = 120_000;
/** Queues bills per 64 KB of a message. */
export const QUEUE_CHUNK_BYTES = 64 * 1024;

const utf8 = new TextEncoder();

/**
 * An event as the producer queues it and the aggregator keeps it for the archive (src/event/model.ts
 * QueuedEvent): usage as integer micro-units; one sent without id or timestamp gets a UUIDv7 (36
 * characters) and the receive time.
 */
export function queuedForm(event: WireEvent): Record<string, unknown> {
	const { usage, ...rest } = event;
	return {
		id: "00000000-0000-7000-8000-000000000000",
		timestamp: Date.now(),
		...rest,
		usage: { sku: usage.sku, unit: usage.unit, micros: Math.round(usage.quantity * 1e6) },
	};
}

/**
 * The byte sizes of the queue messages the producer makes of one request's events, computed as
 * src/producer/pack.ts does from each event's queued form (usage as integer micro-units).
 */
export function packedMessageSizes(tenant: string, events: WireEvent[]): number[] {
	const envelope = utf8.encode(JSON.stringify({ v: 1, tenant, events: [] })).length;
	const sizes: number[] = [];
	let bytes = envelope;
	let count = 0;
	for (const event of events) {
		const size = utf8.encode(JSON.stringify(queuedForm(event))).length;
		if (count > 0 && bytes + 1 + size > MESSAGE_BYTES) {
			sizes.push(bytes);
			bytes = envelope;
			count = 0;
		}
		bytes += count > 0 ? 1 + size : size;
		count++;
	}
	if (count > 0) sizes.push(bytes);
	return sizes;
}

/** Billed 64 KB chunks of one message. */
export const queueChunks = (bytes: number) => Math.max(1, Math.ceil(bytes / QUEUE_CHUNK_BYTES));

/**
 * Calls against the pipeline that are not the traffic under test (tenant creation, flushes, polls),
 * counted, because the pipeline's own request counter sees them too.
 */
export class ControlPlane {
	calls = 0;
	readonly pipeline: LocalPipeline;

	constructor(pipeline: LocalPipeline) {
		this.pipeline = pipeline;
	}

	async json<T>(pathname: string, init: RequestInit & { key?: string } = {}): Promise<T> {
		this.calls++;
		const response = await this.pipeline.call(pathname, init);
		if (!response.ok) throw new Error(`${init.method ?? "GET"} ${pathname}: ${response.status} ${await response.text()}`);
		return (await response.json()) as T;
	}

	async createTenant(id: string): Promise<TenantKeys> {
		this.calls++;
		return this.pipeline.createTenant(id);
	}

	metrics(tenant: TenantKeys): Promise<TenantMetrics> {
		return this.json<TenantMetrics>("/v1/metrics", { key: tenant.readKey });
	}

	flush(tenant: TenantKeys): Promise<{ flushed: number }> {
		return this.json<{ flushed: number }>("/v1/flush", { method: "POST", key: tenant.writeKey });
	}

	/**
	 * GET /v1/admin/operations for every tenant: it answers a page of tenants at a time, so this
	 * follows nextCursor to the last page, adding up each page's aggregator totals. `pipeline` is
	 * pipeline-wide on every page; the last page's is the latest reading.
	 */
	async operations(): Promise<Operations> {
		const all: Operations = { pipeline: {}, aggregators: {}, tenants: [] };
		let cursor: string | null = null;
		do {
			const page: OperationsPage = await this.json<OperationsPage>(
				`/v1/admin/operations?limit=100${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`,
				{ key: this.pipeline.adminToken },
			);
			all.pipeline = page.pipeline;
			for (const [name, value] of Object.entries(page.aggregators) as [keyof AggregatorOperations, number][])
				all.aggregators[name] = (all.aggregators[name] ?? 0) + value;
			all.tenants.push(...page.tenants);
			cursor = page.nextCursor;
		} while (cursor !== null);
		return all;
	}

	/** Events of `sku` in `tenant`'s usage report around now. */
	async usageEvents(tenant: TenantKeys, skus: (sku: string) => boolean): Promise<Map<string, number>> {
		const day = Math.floor(Date.now() / 86_400_000) * 86_400_000;
		const from = new Date(day - 86_400_000).toISOString();
		const to = new Date(day + 2 * 86_400_000).toISOString();
		const { items } = await this.json<{ items: { sku: string; events: number }[] }>(`/v1/usage?granularity=day&from=${from}&to=${to}`, {
			key: tenant.readKey,
		});
		const events = new Map<string, number>();
		for (const item of items) if (skus(item.sku)) events.set(item.sku, (events.get(item.sku) ?? 0) + item.events);
		return events;
	}
}

export interface TenantMetrics {
	consumed: number;
	aggregated: number;
	flushedRows: number;
	oldestUnflushedAgeMs: number | null;
	spillPending: number;
	/** Events written to the raw-event archive (and handed to the forwarding queue, when bound). */
	archived: number;
}

export interface AggregatorOperations {
	rpc_calls: number;
	alarms: number;
	sqlite_rows_written: number;
	d1_rows_written: number;
	analytics_points: number;
	storageBytes: number;
}

/** GET /v1/admin/operations over every page. */
export interface Operations {
	pipeline: Partial<Record<"http_requests" | "queue_messages" | "queue_send_calls" | "consumer_batches", number>>;
	aggregators: Partial<AggregatorOperations>;
	tenants: ({ tenant: string } & AggregatorOperations)[];
}

/** One page of GET /v1/admin/operations: `aggregators` totals only its own tenants. */
interface OperationsPage extends Operations {
	nextCursor: string | null;
}

/** POSTs one request body; counts a non-2xx answer (or a network error) instead of throwing. */
export async function postEvents(pipeline: LocalPipeline, key: string, body: string, query = ""): Promise<number> {
	try {
		const response = await pipeline.call(`/v1/events${query}`, { method: "POST", key, body });
		await response.arrayBuffer();
		return response.status;
	} catch {
		return 0;
	}
}

/** Runs `worker` on `concurrency` lanes until it returns false. */
export async function lanes(concurrency: number, worker: (lane: number) => Promise<boolean>): Promise<void> {
	await Promise.all(
		Array.from({ length: concurrency }, async (_, lane) => {
			while (await worker(lane));
		}),
	);
}

/** Polls `check` every `intervalMs` until it returns true, or throws after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 200): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await sleep(intervalMs);
	}
}

/** Non-2xx answers (status → count); status 0 is a network error. */
export type StatusCounts = Record<string, number>;

export function countStatus(counts: StatusCounts, status: number): void {
	if (status >= 200 && status < 300) return;
	counts[String(status)] = (counts[String(status)] ?? 0) + 1;
}

export const totalOf = (counts: StatusCounts) => Object.values(counts).reduce((a, b) => a + b, 0);
