// The rollup shapes, shared by the aggregator's local tables and D1's: keys plus mergeable measures.
// Every measure merges by sum, min or max, so rollups add up in any order and any grouping. A
// percentile sketch (bucket counts, merged by sum) or unique users (HLL registers, merged by max)
// fit the same shape as extra keyed rollups, with no change to the flush protocol.

export type Merge = "sum" | "min" | "max";

export interface RollupSpec {
	/** The D1 table: keyed by tenant plus `keys`. */
	table: string;
	/** The aggregator's local table: keyed by flush batch plus `keys`. */
	localTable: string;
	keys: readonly string[];
	measures: Readonly<Record<string, Merge>>;
	/** Measures that may exceed 2^53 when summed: they travel as decimal text and are cast back. */
	exactIntegers: readonly string[];
}

export const USAGE_ROLLUP: RollupSpec = {
	table: "usage_rollups",
	localTable: "pending_usage",
	keys: ["sku", "unit", "hour"],
	measures: { quantity_micros: "sum", events: "sum" },
	exactIntegers: ["quantity_micros"],
};

export const EVENT_ROLLUP: RollupSpec = {
	table: "event_rollups",
	localTable: "pending_events",
	keys: ["event", "minute"],
	measures: {
		count: "sum",
		errors: "sum",
		duration_count: "sum",
		duration_sum: "sum",
		duration_min: "min",
		duration_max: "max",
	},
	exactIntegers: [],
};

export const ROLLUPS = [USAGE_ROLLUP, EVENT_ROLLUP] as const;

/** A rollup row: key and measure columns by name. */
export type RollupRow = Record<string, string | number | null>;

export function columnsOf(spec: RollupSpec): string[] {
	return [...spec.keys, ...Object.keys(spec.measures)];
}

/** SQL that merges an incoming value into a stored one; NULL (no data) never wins a min or max. */
export function mergeSql(column: string, merge: Merge, incoming = `excluded.${column}`): string {
	if (merge === "sum") return `${column} = ${column} + ${incoming}`;
	return `${column} = coalesce(${merge}(${column}, ${incoming}), ${column}, ${incoming})`;
}

export function onConflictMerge(spec: RollupSpec, conflictKeys: readonly string[]): string {
	const sets = Object.entries(spec.measures).map(([column, merge]) => mergeSql(column, merge));
	return `ON CONFLICT (${conflictKeys.join(", ")}) DO UPDATE SET ${sets.join(", ")}`;
}

/** Epoch ms → the ISO start of its UTC minute or hour bucket. */
export function bucketStart(ms: number, size: "minute" | "hour"): string {
	const step = size === "minute" ? 60_000 : 3_600_000;
	return new Date(ms - (ms % step)).toISOString();
}
