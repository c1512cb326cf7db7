// What the aggregator's modules work with: its storage and memory, its bindings, and where it writes.
import { writeDataPoints, type DataPoint } from "../sinks/analytics.js";
import { PARQUET_TYPE } from "../sinks/archive.js";
import { insertDeadLetters, type NewDeadLetter } from "../sinks/d1/dead-letters.js";
import { applyFlush, type FlushBatch } from "../sinks/d1/rollups.js";
import type { IdMemory } from "./dedupe.js";
import type { MeterRegistry } from "./meter-definitions.js";
import type { MeterGroups } from "./meter-groups.js";
import type { NameCaps, NameRegistry } from "./names.js";
import type { Store } from "./state.js";

/** Where a flush writes. The aggregator's own seam: tests wrap these to inject faults. */
export interface FlushSinks {
	d1(tenant: string, batch: FlushBatch): Promise<boolean>;
	analytics(points: DataPoint[]): number;
	deadLetters(rows: NewDeadLetter[]): Promise<void>;
	/** Writes one archive part to R2. */
	archive(key: string, body: ArrayBuffer): Promise<void>;
}

/** Read afresh from the live object at each call, so a test's replacement of env or sinks takes effect. */
export interface Parts {
	store: Store;
	ids: IdMemory;
	names: NameRegistry;
	meterGroups: MeterGroups;
	meters: MeterRegistry;
	/** Closed billing months ("2026-11"): their late usage becomes adjustments. */
	closed: Set<string>;
	env: Env;
	sinks: FlushSinks;
}

export function positive(value: string | undefined, fallback: number): number {
	const parsed = Number(value);
	return Number.isFinite(parsed) && parsed > 0 ? parsed : fallback;
}

/** The flush settings from the environment. */
export function flushSettings(env: Env): { intervalMs: number; maxRows: number } {
	return { intervalMs: positive(env.FLUSH_INTERVAL_MS, 10_000), maxRows: positive(env.FLUSH_MAX_ROWS, 1000) };
}

export function nameCaps(env: Env): NameCaps {
	return { event: positive(env.MAX_EVENT_NAMES, 1000), sku: positive(env.MAX_SKUS, 1000), route: positive(env.MAX_ROUTES, 1000) };
}

/** Distinct group-value tuples a meter keeps per hour before the rest fold into "(other)". */
export function meterGroupCap(env: Env): number {
	return positive(env.MAX_METER_GROUPS, 10_000);
}

/** Active meters a tenant may have (MAX_METERS): each one adds rollup rows for every event it counts. */
export function meterCap(env: Env): number {
	return positive(env.MAX_METERS, 50);
}

/** The platform behind each sink; tests replace single members to inject faults. */
export function platformSinks(env: Env): FlushSinks {
	return {
		d1: (tenant, batch) => applyFlush(env.DB, tenant, batch, new Date().toISOString()),
		analytics: (points) => writeDataPoints(env.ANALYTICS, points),
		deadLetters: (rows) => insertDeadLetters(env.DB, rows),
		archive: async (key, body) => {
			await env.ARCHIVE.put(key, body, { httpMetadata: { contentType: PARQUET_TYPE } });
		},
	};
}
