// The rollup shapes, shared by the aggregator's local tables, D1's tables, the reports and the
// sinks: keys plus mergeable measures. Every measure merges by sum, min, max or an exact sum, so
// rollups add up in any order and any grouping, and a flush is just a merge into D1.

/**
 * How a measure merges. "exact" is a sum of integer micro-units carried past int64: it is stored
 * as two integer columns, `<name>_hi` (multiples of EXACT_SPLIT) and `<name>_lo` (< EXACT_SPLIT),
 * and travels in JavaScript as decimal text.
 */
export type Merge = "sum" | "min" | "max" | "exact";

export interface RollupSpec {
	/** A short name the aggregator's read snapshot and the reports use. */
	name: "usage" | "events" | "adjustments";
	/** The D1 table: keyed by tenant plus `keys`. */
	table: string;
	/** The aggregator's local table: keyed by flush batch plus `keys`. */
	localTable: string;
	keys: readonly string[];
	/** The key that holds the bucket's ISO start (or the month, for adjustments). */
	time: string;
	measures: Readonly<Record<string, Merge>>;
	/** Older rows folded into a coarser D1 table (event stats per minute become hours). */
	compacted?: { table: string; time: string };
}

/** An exact sum's low column stays below this; SUM() over at most ~9.2 million rows cannot overflow it. */
export const EXACT_SPLIT = 1_000_000_000_000n;
const EXACT_SPLIT_SQL = "1000000000000";

export const USAGE_ROLLUP: RollupSpec = {
	name: "usage",
	table: "usage_rollups",
	localTable: "pending_usage",
	keys: ["sku", "unit", "hour"],
	time: "hour",
	measures: { micros: "exact", events: "sum" },
};

export const EVENT_ROLLUP: RollupSpec = {
	name: "events",
	table: "event_rollups",
	localTable: "pending_events",
	keys: ["event", "minute"],
	time: "minute",
	measures: {
		count: "sum",
		errors: "sum",
		duration_count: "sum",
		duration_sum: "sum",
		duration_min: "min",
		duration_max: "max",
	},
	compacted: { table: "event_rollups_hourly", time: "hour" },
};

/**
 * Usage that arrived for a billing month after it was closed: booked into the month it arrived
 * in (`booked`), never into the closed one (`period`), so an invoiced month never changes.
 */
export const ADJUSTMENT_ROLLUP: RollupSpec = {
	name: "adjustments",
	table: "usage_adjustments",
	localTable: "pending_adjustments",
	keys: ["sku", "unit", "period", "booked"],
	time: "booked",
	measures: { micros: "exact", events: "sum" },
};

export const ROLLUPS = [USAGE_ROLLUP, EVENT_ROLLUP, ADJUSTMENT_ROLLUP] as const;

/** A rollup row: key and measure values by logical name (exact sums as decimal text). */
export type RollupRow = Record<string, string | number | null>;

/** The SQL columns of a spec: keys, then measures, an exact measure as its two columns. */
export function sqlColumns(spec: RollupSpec): string[] {
	return [
		...spec.keys,
		...Object.entries(spec.measures).flatMap(([name, merge]) => (merge === "exact" ? [`${name}_hi`, `${name}_lo`] : [name])),
	];
}

/** A row's values in sqlColumns order: an exact sum split into its high and low parts. */
export function sqlValues(spec: RollupSpec, row: RollupRow): (string | number | null)[] {
	const values: (string | number | null)[] = spec.keys.map((key) => row[key] ?? null);
	for (const [name, merge] of Object.entries(spec.measures)) {
		if (merge !== "exact") values.push(row[name] ?? null);
		else {
			const total = BigInt(row[name] ?? 0);
			values.push(Number(total / EXACT_SPLIT), Number(total % EXACT_SPLIT));
		}
	}
	return values;
}

/** Reads a row selected with `selectList`, joining each exact sum's parts into decimal text. */
export function fromSql(spec: RollupSpec, raw: Record<string, unknown>): RollupRow {
	const row: RollupRow = {};
	for (const key of spec.keys) row[key] = raw[key] as string;
	for (const [name, merge] of Object.entries(spec.measures)) {
		row[name] = merge === "exact" ? joinExact(raw[`${name}_hi`], raw[`${name}_lo`]) : (raw[name] as number | null);
	}
	return row;
}

function joinExact(hi: unknown, lo: unknown): string {
	return (BigInt(String(hi ?? 0)) * EXACT_SPLIT + BigInt(String(lo ?? 0))).toString();
}

/**
 * The SELECT list that reads a spec's rows as stored (`aggregate` false) or summed over a group
 * (`aggregate` true), exact parts as text so no value passes through a float.
 */
export function selectList(spec: RollupSpec, aggregate: boolean): string {
	const parts = spec.keys.filter((key) => !aggregate || key !== spec.time);
	for (const [name, merge] of Object.entries(spec.measures)) {
		if (merge === "exact") {
			for (const part of [`${name}_hi`, `${name}_lo`]) parts.push(`CAST(${aggregate ? `SUM(${part})` : part} AS TEXT) AS ${part}`);
		} else if (aggregate) parts.push(`${merge.toUpperCase()}(${name}) AS ${name}`);
		else parts.push(name);
	}
	return parts.join(", ");
}

/** SQL that merges incoming values into a stored row; NULL (no data) never wins a min or max. */
export function onConflictMerge(spec: RollupSpec, conflictKeys: readonly string[]): string {
	const sets: string[] = [];
	for (const [name, merge] of Object.entries(spec.measures)) {
		if (merge === "sum") sets.push(`${name} = ${name} + excluded.${name}`);
		else if (merge === "exact") {
			// Every SET expression reads the row as it was, so the carry uses the old low part.
			const lo = `${name}_lo + excluded.${name}_lo`;
			sets.push(
				`${name}_lo = (${lo}) % ${EXACT_SPLIT_SQL}`,
				`${name}_hi = ${name}_hi + excluded.${name}_hi + (${lo}) / ${EXACT_SPLIT_SQL}`,
			);
		} else sets.push(`${name} = coalesce(${merge}(${name}, excluded.${name}), ${name}, excluded.${name})`);
	}
	return `ON CONFLICT (${conflictKeys.join(", ")}) DO UPDATE SET ${sets.join(", ")}`;
}

/** Merges `row` into `into` in place, by the spec's rules (exact sums in BigInt). */
export function mergeRow(spec: RollupSpec, into: RollupRow, row: RollupRow): void {
	for (const [name, merge] of Object.entries(spec.measures)) {
		const a = into[name] ?? null;
		const b = row[name] ?? null;
		if (merge === "exact") into[name] = (BigInt(a ?? 0) + BigInt(b ?? 0)).toString();
		else if (merge === "sum") into[name] = Number(a ?? 0) + Number(b ?? 0);
		else if (a === null || b === null) into[name] = a ?? b;
		else into[name] = merge === "min" ? Math.min(Number(a), Number(b)) : Math.max(Number(a), Number(b));
	}
}

/** A JSON key that keeps any two rows' keys apart, whatever characters they hold. */
export function rowKey(spec: RollupSpec, row: RollupRow): string {
	return JSON.stringify(spec.keys.map((key) => row[key]));
}

/** Epoch ms → the ISO start of its UTC minute or hour bucket. */
export function bucketStart(ms: number, size: "minute" | "hour"): string {
	const step = size === "minute" ? 60_000 : 3_600_000;
	return new Date(ms - (ms % step)).toISOString();
}

/** Epoch ms → its UTC month, "2026-11". */
export function monthOf(ms: number): string {
	return new Date(ms).toISOString().slice(0, 7);
}
