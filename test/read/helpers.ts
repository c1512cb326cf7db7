// Read-side helpers: D1's rollup tables seeded directly, as flushed aggregators would have left
// them; the report shapes; what the pipeline reports (metrics, usage, stats), read through the API;
// and the traffic whose event minutes the aggregator alarm folds into hours.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import type { TenantMetrics } from "../../src/read/metrics";
import { d1Rows, type EventTotal } from "../aggregator/helpers";
import { call, getJson, type TestTenant } from "../helpers";

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const iso = (ms: number) => new Date(ms).toISOString();

// ---- Seeding D1 ----

export interface UsageRow {
	sku: string;
	unit?: string;
	/** ISO start of the UTC hour. */
	hour: string;
	/** Integer micro-units, as decimal text so sums past 2^53 can be seeded. */
	micros: string;
	events?: number;
}

export async function seedUsage(tenant: string, rows: UsageRow[]): Promise<void> {
	await env.DB.batch(
		rows.map((row) =>
			env.DB.prepare(
				"INSERT INTO usage_rollups (tenant, sku, unit, hour, micros_hi, micros_lo, events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			).bind(
				tenant,
				row.sku,
				row.unit ?? "unit",
				row.hour,
				Number(BigInt(row.micros) / 10n ** 12n),
				Number(BigInt(row.micros) % 10n ** 12n),
				row.events ?? 1,
			),
		),
	);
}

export interface EventRow {
	event: string;
	/** ISO start of the UTC minute. */
	minute: string;
	count: number;
	errors?: number;
	/** Durations in the row; omitted means none were reported. */
	durations?: { count: number; sum: number; min: number; max: number };
}

export async function seedEvents(tenant: string, rows: EventRow[]): Promise<void> {
	await env.DB.batch(
		rows.map((row) =>
			env.DB.prepare(
				`INSERT INTO event_rollups (tenant, event, minute, count, errors, duration_count, duration_sum, duration_min, duration_max)
				 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`,
			).bind(
				tenant,
				row.event,
				row.minute,
				row.count,
				row.errors ?? 0,
				row.durations?.count ?? 0,
				row.durations?.sum ?? 0,
				row.durations?.min ?? null,
				row.durations?.max ?? null,
			),
		),
	);
}

export interface UsageReport {
	tenant: string;
	from: string;
	to: string;
	granularity: string;
	items: { sku: string; unit: string; period: string; quantity: number; quantityDecimal: string; events: number }[];
	adjustments: {
		sku: string;
		unit: string;
		period: string;
		adjustmentFor: string;
		quantity: number;
		quantityDecimal: string;
		events: number;
	}[];
}

export interface StatsReport {
	tenant: string;
	from: string;
	to: string;
	granularity: string;
	items: {
		event: string;
		period: string;
		count: number;
		errors: number;
		duration: { count: number; sum: number; min: number | null; max: number | null };
	}[];
}

// ---- Reading what the pipeline reports ----

export function metricsOf(tenant: TestTenant): Promise<TenantMetrics> {
	return getJson<TenantMetrics>("/v1/metrics", tenant.readKey);
}

/** The metrics of a tenant nothing has happened to, overridden by what a test expects. */
export function metricsWith(tenant: TestTenant, counts: Partial<TenantMetrics> = {}): TenantMetrics {
	return {
		tenant: tenant.id,
		received: 0,
		enqueued: 0,
		enqueueFailures: 0,
		lost: 0,
		rejected: 0,
		spilled: 0,
		respooled: 0,
		consumed: 0,
		duplicatesDropped: 0,
		aggregated: 0,
		flushedRows: 0,
		flushFailures: 0,
		deadLettered: 0,
		replayed: 0,
		oldestUnflushedAgeMs: null,
		spillPending: 0,
		capped: 0,
		expired: 0,
		quarantinedRows: 0,
		analyticsDropped: 0,
		meterSkipped: 0,
		meterGroupsFolded: 0,
		routesFolded: 0,
		archived: 0,
		destinations: [],
		...counts,
	};
}

export async function usageOf(tenant: TestTenant, from: number, to: number, granularity = "hour"): Promise<UsageReport["items"]> {
	return (await getJson<UsageReport>(`/v1/usage?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey)).items;
}

export async function statsOf(tenant: TestTenant, from: number, to: number, granularity = "minute"): Promise<StatsReport["items"]> {
	return (await getJson<StatsReport>(`/v1/stats?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey)).items;
}

/** POST /v1/flush with the tenant's write key. */
export function flushVia(tenant: TestTenant): Promise<Response> {
	return call("/v1/flush", { method: "POST", key: tenant.writeKey });
}

/** The events of a stats item with no performance data. */
export function countOnly(event: string, period: number, count: number): StatsReport["items"][number] {
	return { event, period: iso(period), count, errors: 0, duration: { count: 0, sum: 0, min: null, max: null } };
}

// ---- Event minutes folded into hours by the aggregator alarm (the compacted-stats tests) ----

export const DAY = 86_400_000;
/** How long event minutes are kept before they are folded into hours. */
export const RETENTION = 7 * DAY;
/** The duration summary of events that reported none. */
export const NO_DURATION = { count: 0, sum: 0, min: null, max: null };

let next = 0;
export function timedEvent(name: string, timestamp: number, performance?: QueuedEvent["performance"]): QueuedEvent {
	return { id: `c-${next++}`, event: name, timestamp, ...(performance && { performance }) };
}

/** The tenant's aggregator takes in `events` directly, every one accepted. */
export async function ingestAccepted(tenant: TestTenant, events: QueuedEvent[]): Promise<void> {
	expect(await env.AGGREGATOR.getByName(tenant.id).ingest(tenant.id, events)).toEqual({
		accepted: events.length,
		duplicates: 0,
		refused: [],
	});
}

/** GET /v1/stats for the range, checking the report's envelope; its items. */
export async function checkedStats(tenant: TestTenant, from: number, to: number, granularity: string): Promise<StatsReport["items"]> {
	const report = await getJson<StatsReport>(`/v1/stats?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey);
	expect(report).toEqual({ tenant: tenant.id, from: iso(from), to: iso(to), granularity, items: expect.any(Array) });
	return report.items;
}

/** D1's event rows per minute, as stored. */
export function minuteRows(tenant: TestTenant): Promise<EventTotal[]> {
	return d1Rows(
		"SELECT event, minute, count, errors, duration_count, duration_sum, duration_min, duration_max FROM event_rollups WHERE tenant = ?1 ORDER BY event, minute",
		tenant.id,
	);
}

/** D1's event rows folded per hour. */
export function hourRows(tenant: TestTenant): Promise<(Omit<EventTotal, "minute"> & { hour: string })[]> {
	return d1Rows(
		"SELECT event, hour, count, errors, duration_count, duration_sum, duration_min, duration_max FROM event_rollups_hourly WHERE tenant = ?1 ORDER BY event, hour",
		tenant.id,
	);
}

/** Runs the tenant's aggregator alarm, which must be armed. */
export async function runAlarm(tenant: TestTenant): Promise<void> {
	expect(await runDurableObjectAlarm(env.AGGREGATOR.getByName(tenant.id))).toBe(true);
}

/** The start of the UTC hour two hours before `now`, and the hour after it: both complete. */
export function twoHours(now: number): [number, number] {
	const first = now - (now % HOUR) - 2 * HOUR;
	return [first, first + HOUR];
}

/** Performance-rich events in `first` and a few in `second`. */
export function traffic(first: number, second: number): QueuedEvent[] {
	return [
		timedEvent("api_call", first + 5 * MINUTE, { duration: 12.5, statusCode: 200 }),
		timedEvent("api_call", first + 5 * MINUTE, { duration: 100.25, statusCode: 503 }),
		timedEvent("api_call", first + 40 * MINUTE, { statusCode: 500 }),
		timedEvent("api_call", first + 40 * MINUTE + 30_000, { duration: 0.5 }),
		timedEvent("page_view", first + 59 * MINUTE),
		timedEvent("page_view", first + 59 * MINUTE + 59_999),
		timedEvent("api_call", second + 10 * MINUTE, { duration: 7, statusCode: 404 }),
		timedEvent("page_view", second + 20 * MINUTE),
	];
}

/** The stats by hour of traffic(first, second). */
export function byHour(first: number, second: number): StatsReport["items"] {
	return [
		{ event: "api_call", period: iso(first), count: 4, errors: 2, duration: { count: 3, sum: 113.25, min: 0.5, max: 100.25 } },
		{ event: "page_view", period: iso(first), count: 2, errors: 0, duration: NO_DURATION },
		{ event: "api_call", period: iso(second), count: 1, errors: 0, duration: { count: 1, sum: 7, min: 7, max: 7 } },
		{ event: "page_view", period: iso(second), count: 1, errors: 0, duration: NO_DURATION },
	];
}
