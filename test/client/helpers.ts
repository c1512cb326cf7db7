// Client test plumbing: a context that records waitUntil, queues that record (and can refuse)
// sends, the pipeline's reports once the real consumer has taken the events in, a client on an
// in-memory queue, and the events the middleware records.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { expect, vi } from "vitest";
import type { EventsMessage, QueuedEvent } from "../../src/event/model";
import { createAnalytics, type ContextLike, type ErrorInfo, type QueueLike } from "../../src/client/index";
import { call, getJson, type TestTenant } from "../helpers";

/** A real ExecutionContext that also records each promise handed to waitUntil. */
export class RecordingContext implements ContextLike {
	readonly ctx = createExecutionContext();
	readonly waited: Promise<unknown>[] = [];

	waitUntil(promise: Promise<unknown>): void {
		this.waited.push(promise);
		this.ctx.waitUntil(promise);
	}

	/** Waits for every waitUntil promise, including those handed over while waiting. */
	settle(): Promise<void> {
		return waitOnExecutionContext(this.ctx);
	}
}

/** A queue that keeps what it is sent and never delivers; `failures` sends throw first. */
export class MemoryQueue implements QueueLike {
	/** Message bodies per sendBatch call that succeeded. */
	readonly batches: EventsMessage[][] = [];
	attempts = 0;

	constructor(
		private failures = 0,
		private readonly error = new Error("queue unavailable"),
	) {}

	async sendBatch(messages: Iterable<{ body: unknown; contentType?: "json" | "text" }>): Promise<void> {
		this.attempts++;
		if (this.failures > 0) {
			this.failures--;
			throw this.error;
		}
		// The client sends each message as its packed JSON text, as the producer does.
		this.batches.push([...messages].map((message) => JSON.parse(message.body as string) as EventsMessage));
	}

	get events(): QueuedEvent[] {
		return this.batches.flat().flatMap((message) => message.events);
	}
}

/** An onError hook that keeps what it hears. */
export function errorLog(): { errors: { error: unknown; info: ErrorInfo }[]; onError: (error: unknown, info: ErrorInfo) => void } {
	const errors: { error: unknown; info: ErrorInfo }[] = [];
	return { errors, onError: (error, info) => void errors.push({ error, info }) };
}

export interface StatsItem {
	event: string;
	count: number;
	errors: number;
	duration: { count: number; sum: number; min: number | null; max: number | null };
}

export interface UsageItem {
	sku: string;
	unit: string;
	quantity: number;
	events: number;
}

/**
 * Once the tenant's aggregator has taken in `events` events (the local queue delivers them to the
 * real consumer), flushes it and returns GET /v1/stats (summed per event name) and GET /v1/usage.
 */
export async function reports(
	tenant: TestTenant,
	events: number,
): Promise<{ stats: Record<string, Omit<StatsItem, "event">>; usage: UsageItem[]; duplicatesDropped: number }> {
	const range = `from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date(Date.now() + 3_600_000).toISOString()}`;
	let result: Awaited<ReturnType<typeof reports>> | undefined;
	await vi.waitFor(
		async () => {
			const metrics = await getJson<{ consumed: number; duplicatesDropped: number }>("/v1/metrics", tenant.readKey);
			expect(metrics.consumed).toBeGreaterThanOrEqual(events);
			expect((await call("/v1/flush", { method: "POST", key: tenant.writeKey })).status).toBe(200);
			const stats = await getJson<{ items: StatsItem[] }>(`/v1/stats?granularity=day&${range}`, tenant.readKey);
			const usage = await getJson<{ items: UsageItem[] }>("/v1/usage?granularity=month", tenant.readKey);
			const byEvent: Record<string, Omit<StatsItem, "event">> = {};
			// The range may straddle midnight: add up each event's day buckets.
			for (const { event, count, errors, duration } of stats.items) {
				const seen = byEvent[event];
				byEvent[event] = seen
					? {
							count: seen.count + count,
							errors: seen.errors + errors,
							duration: {
								count: seen.duration.count + duration.count,
								sum: seen.duration.sum + duration.sum,
								min: minOf(seen.duration.min, duration.min),
								max: maxOf(seen.duration.max, duration.max),
							},
						}
					: { count, errors, duration };
			}
			result = {
				stats: byEvent,
				usage: usage.items.map(({ sku, unit, quantity, events: n }) => ({ sku, unit, quantity, events: n })),
				duplicatesDropped: metrics.duplicatesDropped,
			};
		},
		{ timeout: 30_000, interval: 100 },
	);
	return result!;
}

const minOf = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));
const maxOf = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

// ---- The analytics client, and what it records ----

/** A fixed instant, on the real clock's minute, so the edge's ±35 days / 5 minutes checks pass. */
export const T = Date.now() - (Date.now() % 60_000);

/** A client for tenant-a sending to an in-memory queue, whose onError is recorded. */
export function memoryClient(options: Parameters<typeof createAnalytics>[2] = {}) {
	const ctx = new RecordingContext();
	const queue = new MemoryQueue();
	const log = errorLog();
	const analytics = createAnalytics(ctx, { queue, tenant: "tenant-a" }, { onError: log.onError, ...options });
	return { ctx, queue, analytics, errors: log.errors };
}

/** The origin of the app the middleware tests route. */
export const APP_BASE = "https://app.test";

/** Each event without its id and timestamp, which other tests check. */
export const recorded = (queue: MemoryQueue) => queue.events.map(({ id: _id, timestamp: _timestamp, ...event }: QueuedEvent) => event);

/** The $error event a thrown error records, with the request's route (and anything else, such as its customer). */
export function errorEvent(method: string, route: string, thrown: Error, fields: Record<string, unknown> = {}) {
	return {
		event: "$error",
		route,
		...fields,
		properties: { method, name: thrown.name, message: thrown.message, stackHash: expect.stringMatching(/^[0-9a-f]{16}$/) },
		performance: { statusCode: 500 },
	};
}
