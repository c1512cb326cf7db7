// Aggregator test helpers: events, a frozen clock, fault-injecting sinks, exact reads of DO and D1
// state, and the mixed slice the flush tests share.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { MINUTE_RETENTION_MS } from "../../src/aggregator/compaction";
import { type FlushSinks } from "../../src/aggregator/parts";
import { type TenantAggregator } from "../../src/aggregator/aggregator";
import type { AggregatorState } from "../../src/aggregator/state";
import { DEDUPE_WINDOW_MS as WINDOW, type QueuedEvent } from "../../src/event/model";
import type { DataPoint } from "../../src/sinks/analytics";
import { freezeClockAt, InjectedFault, uniqueTenantId } from "../helpers";

export const FLUSH_INTERVAL_MS = Number(env.FLUSH_INTERVAL_MS);
export const FLUSH_MAX_ROWS = Number(env.FLUSH_MAX_ROWS);
export const DEDUPE_WINDOW_MS = WINDOW;

const HOUR_MS = 3_600_000;
/**
 * The frozen "now" for aggregator tests: an hour after the events' default time, in 2100, so no
 * alarm these tests arm ever fires by itself (alarms run only when a test calls
 * runDurableObjectAlarm), and the events stay well inside the dedupe window.
 */
export const FROZEN_AT = Date.UTC(2100, 2, 10, 15, 0, 0, 123);

/** Freezes Date (in the test and in the Durable Object: they share one isolate). */
export function freezeClock(at = FROZEN_AT): number {
	return freezeClockAt(at);
}

/** Event timestamps: two minutes before and after a UTC hour boundary. */
export const AT = {
	"13:58:00.000": Date.UTC(2100, 2, 10, 13, 58, 0, 0),
	"13:59:00.000": Date.UTC(2100, 2, 10, 13, 59, 0, 0),
	"13:59:30.000": Date.UTC(2100, 2, 10, 13, 59, 30, 0),
	"13:59:59.999": Date.UTC(2100, 2, 10, 13, 59, 59, 999),
	"14:00:00.000": Date.UTC(2100, 2, 10, 14, 0, 0, 0),
	"14:01:30.000": Date.UTC(2100, 2, 10, 14, 1, 30, 0),
} as const;

/** The rollup buckets of makeEvent's default timestamp. */
export const EVENT_HOUR = "2100-03-10T13:00:00.000Z";
export const EVENT_MINUTE = "2100-03-10T13:59:00.000Z";
/** When the alarm prunes the id partition of makeEvent's default timestamp (its hour's end + the window). */
export const PRUNE_AT = Date.parse(EVENT_HOUR) + HOUR_MS + WINDOW;
/** When the alarm folds D1's minutes of that hour into an hourly row (its end + the minute retention). */
export const COMPACT_AT = Date.parse(EVENT_HOUR) + HOUR_MS + MINUTE_RETENTION_MS;

let nextId = 0;
export function makeEvent(overrides: Partial<QueuedEvent> = {}): QueuedEvent {
	return { id: `ev-${nextId++}`, event: "api_call", timestamp: AT["13:59:30.000"], ...overrides };
}

/** A usage of `micros` micro-units, tokens by default. */
export const usage = (micros: number, sku = "tokens", unit = "token") => ({ sku, unit, micros });

export function aggregator(tenant: string) {
	return env.AGGREGATOR.getByName(tenant);
}

/** A fresh tenant, and its aggregator once it has taken in `events`. */
export async function aggregatorWith(events: QueuedEvent[]): Promise<{ tenant: string; stub: ReturnType<typeof aggregator> }> {
	const tenant = uniqueTenantId();
	const stub = aggregator(tenant);
	await stub.ingest(tenant, events);
	return { tenant, stub };
}

/** The members TypeScript keeps protected or private, reached for inspection. */
export function internals(instance: TenantAggregator): { env: Env; sinks: FlushSinks } {
	return instance as unknown as { env: Env; sinks: FlushSinks };
}

// ---- Fault injection through the aggregator's own seam (instance.sinks) ----

/** sinks.d1 throws on its next `times` calls without touching D1, then delegates to the real sink. */
export function failD1(instance: TenantAggregator, times: number): { calls: number } {
	const sinks = internals(instance).sinks;
	const real = sinks.d1;
	const seen = { calls: 0 };
	sinks.d1 = async (tenant, batch) => {
		seen.calls++;
		if (seen.calls <= times) throw new InjectedFault("D1 unavailable");
		return real(tenant, batch);
	};
	return seen;
}

/** Records the flush id and row count of every flush sinks.d1 is handed, in order, then delegates. */
export function recordFlushes(instance: TenantAggregator): { flush_id: string; rows: number }[] {
	const sinks = internals(instance).sinks;
	const real = sinks.d1;
	const seen: { flush_id: string; rows: number }[] = [];
	sinks.d1 = async (tenant, batch) => {
		seen.push({ flush_id: batch.flushId, rows: [...batch.rows.values()].reduce((n, rows) => n + rows.length, 0) });
		return real(tenant, batch);
	};
	return seen;
}

/** sinks.d1 commits for real and then throws on its next `times` calls: a crash before the local clear. */
export function crashAfterD1Commit(instance: TenantAggregator, times: number): { calls: number; applied: boolean[] } {
	const sinks = internals(instance).sinks;
	const real = sinks.d1;
	const seen = { calls: 0, applied: [] as boolean[] };
	sinks.d1 = async (tenant, batch) => {
		seen.calls++;
		const applied = await real(tenant, batch);
		seen.applied.push(applied);
		if (seen.calls <= times) throw new InjectedFault("crashed after D1 commit");
		return applied;
	};
	return seen;
}

// ---- Durable Object local state ----

/** An exact usage sum read back as decimal text from its two integer columns (exact below 9.2 × 10^12 units). */
export const EXACT_MICROS = "CAST(micros_hi * 1000000000000 + micros_lo AS TEXT) AS micros";

function rows<T>(state: DurableObjectState, query: string, ...binds: unknown[]): T[] {
	return state.storage.sql.exec(query, ...binds).toArray() as T[];
}

export interface PendingUsage {
	batch: number;
	sku: string;
	unit: string;
	hour: string;
	micros: string;
	events: number;
}

export function pendingUsage(state: DurableObjectState): PendingUsage[] {
	return rows(state, `SELECT batch, sku, unit, hour, ${EXACT_MICROS}, events FROM pending_usage ORDER BY batch, sku, unit, hour`);
}

export function pendingEvents(state: DurableObjectState): Record<string, unknown>[] {
	return rows(
		state,
		"SELECT batch, event, minute, count, errors, duration_count, duration_sum, duration_min, duration_max FROM pending_events ORDER BY batch, event, minute",
	);
}

export function pendingRowCount(state: DurableObjectState): number {
	return rows<{ n: number }>(state, "SELECT (SELECT count(*) FROM pending_usage) + (SELECT count(*) FROM pending_events) AS n")[0]!.n;
}

/** The aggregator's typed state, as its one row holds it. */
export function stateOf(state: DurableObjectState): AggregatorState {
	return JSON.parse(rows<{ value: string }>(state, "SELECT value FROM state WHERE id = 1")[0]!.value) as AggregatorState;
}

/** What describes a flush in progress or failing: the sealed head, the failures and the retry time (absent when none). */
export function flushMeta(state: DurableObjectState): Record<string, string> {
	const current = stateOf(state);
	const head = rows<{ batch: number }>(state, "SELECT batch FROM sealed ORDER BY batch LIMIT 1")[0];
	const meta: Record<string, string> = {};
	if (head) meta.sealed_batch = String(head.batch);
	if (current.retries.flush.failures > 0) meta.flush_failures = String(current.retries.flush.failures);
	if (current.retries.flush.retryAt > 0) meta.retry_at = String(current.retries.flush.retryAt);
	return meta;
}

export function incarnation(state: DurableObjectState): string {
	return stateOf(state).incarnation!;
}

export function outbox(state: DurableObjectState): DataPoint[] {
	return rows<{ points: string }>(state, "SELECT points FROM outbox ORDER BY id").flatMap((row) => JSON.parse(row.points) as DataPoint[]);
}

/** Remembered ids with the UTC hour (of event time) of the partition holding them, by id. */
export function seenIds(state: DurableObjectState): { id: string; hour: string }[] {
	return rows<{ hour: number; ids: string }>(state, "SELECT hour, ids FROM seen_chunks")
		.flatMap((chunk) => (JSON.parse(chunk.ids) as string[]).map((id) => ({ id, hour: new Date(chunk.hour * HOUR_MS).toISOString() })))
		.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// ---- D1, the billing source of truth ----

export interface UsageTotal {
	sku: string;
	unit: string;
	hour: string;
	micros: string;
	events: number;
}

/** D1 rows for a query with numbered binds. */
export async function d1Rows<T>(query: string, ...binds: unknown[]): Promise<T[]> {
	const { results } = await env.DB.prepare(query)
		.bind(...binds)
		.all<T>();
	return results;
}

export function d1Usage(tenant: string): Promise<UsageTotal[]> {
	return d1Rows(`SELECT sku, unit, hour, ${EXACT_MICROS}, events FROM usage_rollups WHERE tenant = ?1 ORDER BY sku, unit, hour`, tenant);
}

export interface EventTotal {
	event: string;
	minute: string;
	count: number;
	errors: number;
	duration_count: number;
	duration_sum: number;
	duration_min: number | null;
	duration_max: number | null;
}

export function d1Events(tenant: string): Promise<EventTotal[]> {
	return d1Rows(
		"SELECT event, minute, count, errors, duration_count, duration_sum, duration_min, duration_max FROM event_rollups WHERE tenant = ?1 ORDER BY event, minute",
		tenant,
	);
}

export function d1Flushes(tenant: string): Promise<{ flush_id: string; rows: number }[]> {
	return d1Rows("SELECT flush_id, rows FROM flushes WHERE tenant = ?1 ORDER BY flush_id", tenant);
}

/** An event rollup row with no performance data. */
export function countOnly(event: string, minute: string, count: number): EventTotal {
	return { event, minute, count, errors: 0, duration_count: 0, duration_sum: 0, duration_min: null, duration_max: null };
}

/** An RPC call as a plain promise: RPC promises are callable thenables, which expect().rejects mishandles. */
export function settle<T>(call: PromiseLike<T>): Promise<T> {
	return Promise.resolve(call);
}

// ---- The mixed slice the flush tests share ----

/** Two usage rows, two event rows and 27 series rows once rolled up. */
export function mixedSlice(): QueuedEvent[] {
	return [
		makeEvent({ usage: { sku: "tokens", unit: "token", micros: 1_000_000 }, performance: { duration: 10, statusCode: 200 } }),
		makeEvent({ usage: { sku: "tokens", unit: "token", micros: 500_000 }, performance: { duration: 20, statusCode: 500 } }),
		makeEvent({ event: "page_view", usage: { sku: "storage", unit: "GB", micros: 2_500_000 } }),
	];
}

export const mixedUsage = [
	{ sku: "storage", unit: "GB", hour: EVENT_HOUR, micros: "2500000", events: 1 },
	{ sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "1500000", events: 2 },
];
export const mixedEvents = [
	{
		event: "api_call",
		minute: EVENT_MINUTE,
		count: 2,
		errors: 1,
		duration_count: 2,
		duration_sum: 30,
		duration_min: 10,
		duration_max: 20,
	},
	countOnly("page_view", EVENT_MINUTE, 1),
];

/**
 * The rows one flush of the mixed slice writes: 2 usage rows, 2 event rows and 27 series rows.
 * The series (src/aggregator/fold-series.ts) hold 9 rows per grain (minute, hour, day): api_call
 * has 5 (its total, route "", status 200 and 500, country ""), page_view 4 (total, route "",
 * status "", country "").
 */
export const MIXED_SLICE_ROWS = 2 + 2 + 9 * 3;

/** D1 holds the mixed slice once, from the incarnation's first flush, and the aggregator holds nothing. */
export async function expectMixedSliceFlushedOnce(tenant: string): Promise<void> {
	expect(await d1Usage(tenant)).toEqual(mixedUsage);
	expect(await d1Events(tenant)).toEqual(mixedEvents);
	const inc = await runInDurableObject(aggregator(tenant), (_instance, state) => {
		expect(pendingRowCount(state)).toBe(0);
		expect(flushMeta(state)).toEqual({});
		return incarnation(state);
	});
	expect(await d1Flushes(tenant)).toEqual([{ flush_id: `${inc}:1`, rows: MIXED_SLICE_ROWS }]);
}

/**
 * Turns the raw-event archive on in a tenant's aggregator (the tests' config turns it off, with
 * ARCHIVE_INTERVAL_MS "0", so that no other test sees its rows and alarms): production's 60 s.
 */
export function archiveOn(tenant: string): Promise<void> {
	return runInDurableObject(aggregator(tenant), (instance: TenantAggregator) => {
		const inner = internals(instance);
		inner.env = { ...inner.env, ARCHIVE_INTERVAL_MS: "60000" };
	});
}
