// The rollup shapes, shared by the aggregator's local tables, D1's tables, the reports and the
// sinks: keys plus mergeable measures. Every measure merges by sum, min, max, an exact sum, the
// latest value, or a sketch merge, so rollups add up in any order and any grouping, and a flush
// is just a merge into D1.
import { mergeMeasureText, TextMerge, type TextMeasure } from "./measures.js";

/**
 * How a measure merges. "exact" is a sum of integer micro-units carried past int64: it is stored
 * as two integer columns, `<name>_hi` (multiples of EXACT_SPLIT) and `<name>_lo` (< EXACT_SPLIT),
 * and travels in JavaScript as decimal text. "latest" is the value with the greatest time, stored
 * as `<name>_at` (epoch ms) beside `<name>`. The text measures are sketches and value sets that
 * only JavaScript can merge (src/sinks/measures.ts): a rollup holding one must be `packed`.
 */
export type Merge = "sum" | "min" | "max" | "exact" | "latest" | TextMeasure;

export interface RollupSpec {
	/** A short name the aggregator's read snapshot and the reports use. */
	name: "usage" | "events" | "adjustments" | "meters" | "series";
	/** The D1 table: keyed by tenant plus `keys`. */
	table: string;
	/**
	 * The aggregator's local table: keyed by flush batch plus `keys`. A packed rollup has none: its
	 * deltas are kept as one JSON row per ingest in `pending_packed` (a slice of ten meters would
	 * otherwise write thousands of rows), and D1 merges them by reading the stored rows and
	 * replacing them, guarded by the same ledger.
	 */
	localTable?: string;
	keys: readonly string[];
	/** The key that holds the bucket's ISO start (or the month, for adjustments). */
	time: string;
	measures: Readonly<Record<string, Merge>>;
	/** Older rows folded into a coarser D1 table (event stats per minute become hours). */
	compacted?: { table: string; time: string };
}

/** Whether a rollup's deltas are packed (no local table, merged in JavaScript). */
export function isPacked(spec: RollupSpec): boolean {
	return spec.localTable === undefined;
}

/** An exact sum's low column stays below this; SUM() over at most ~9.2 million rows cannot overflow it. */
export const EXACT_SPLIT = 1_000_000_000_000n;
const EXACT_SPLIT_SQL = "1000000000000";

export const USAGE_ROLLUP: RollupSpec = {
	name: "usage",
	table: "usage_rollups",
	localTable: "pending_usage",
	keys: ["customer", "sku", "unit", "hour"],
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
	keys: ["customer", "sku", "unit", "period", "booked"],
	time: "booked",
	measures: { micros: "exact", events: "sum" },
};

/**
 * Tenant-defined meters: one row per meter (its id), customer, group values (a JSON array, in the
 * meter's groupBy order) and minute, with every measure any aggregation needs.
 */
export const METER_ROLLUP: RollupSpec = {
	name: "meters",
	table: "meter_rollups",
	keys: ["meter", "customer", "groups", "minute"],
	time: "minute",
	measures: { count: "sum", value: "exact", min: "min", max: "max", latest: "latest", distinct_values: "distinct" },
};

/** The query API's series: per event, one dimension's value and a bucket of each grain. */
export const SERIES_ROLLUP: RollupSpec = {
	name: "series",
	table: "series_rollups",
	keys: ["grain", "event", "dim", "value", "bucket"],
	time: "bucket",
	measures: { count: "sum", errors: "sum", durations: "durations", users: "users" },
};

export const ROLLUPS = [USAGE_ROLLUP, EVENT_ROLLUP, ADJUSTMENT_ROLLUP, METER_ROLLUP, SERIES_ROLLUP] as const;
/** The rollups kept in their own local tables, upserted by SQL. */
export const TABLE_ROLLUPS = ROLLUPS.filter((spec) => !isPacked(spec));
export const PACKED_ROLLUPS = ROLLUPS.filter(isPacked);

export function rollupNamed(name: RollupSpec["name"]): RollupSpec {
	return ROLLUPS.find((spec) => spec.name === name)!;
}

/** A rollup row: key and measure values by logical name (exact sums as decimal text). */
export type RollupRow = Record<string, string | number | null>;

/** The SQL columns of a spec: keys, then measures, an exact measure as its two columns. */
export function sqlColumns(spec: RollupSpec): string[] {
	return [...spec.keys, ...Object.entries(spec.measures).flatMap(([name, merge]) => measureColumns(name, merge))];
}

function measureColumns(name: string, merge: Merge): string[] {
	if (merge === "exact") return [`${name}_hi`, `${name}_lo`];
	if (merge === "latest") return [`${name}_at`, name];
	return [name];
}

/** A row's values in sqlColumns order: an exact sum split into its high and low parts. */
export function sqlValues(spec: RollupSpec, row: RollupRow): (string | number | null)[] {
	const values: (string | number | null)[] = spec.keys.map((key) => row[key] ?? null);
	for (const [name, merge] of Object.entries(spec.measures)) {
		if (merge === "exact") {
			const total = BigInt(row[name] ?? 0);
			values.push(Number(total / EXACT_SPLIT), Number(total % EXACT_SPLIT));
		} else if (merge === "latest") values.push(row[`${name}_at`] ?? null, row[name] ?? null);
		else values.push(row[name] ?? null);
	}
	return values;
}

/** Reads a row selected with `selectList`, joining each exact sum's parts into decimal text. */
export function fromSql(spec: RollupSpec, raw: Record<string, unknown>): RollupRow {
	const row: RollupRow = {};
	for (const key of spec.keys) row[key] = raw[key] as string;
	for (const [name, merge] of Object.entries(spec.measures)) {
		if (merge === "exact") row[name] = joinExact(raw[`${name}_hi`], raw[`${name}_lo`]);
		else {
			if (merge === "latest") row[`${name}_at`] = (raw[`${name}_at`] as number | null) ?? null;
			row[name] = (raw[name] as string | number | null) ?? null;
		}
	}
	return row;
}

function joinExact(hi: unknown, lo: unknown): string {
	return (BigInt(String(hi ?? 0)) * EXACT_SPLIT + BigInt(String(lo ?? 0))).toString();
}

/**
 * The SELECT list that reads a spec's rows as stored (`aggregate` false) or summed over a group
 * of `keys` (`aggregate` true; default every key but the time), exact parts as text so no value
 * passes through a float.
 */
export function selectList(spec: RollupSpec, aggregate: boolean, keys?: readonly string[]): string {
	if (aggregate && isPacked(spec)) throw new Error(`${spec.name} rows merge in JavaScript, not in SQL`);
	const parts = [...(keys ?? spec.keys.filter((key) => !aggregate || key !== spec.time))];
	for (const [name, merge] of Object.entries(spec.measures)) {
		if (merge === "exact") {
			for (const part of [`${name}_hi`, `${name}_lo`]) parts.push(`CAST(${aggregate ? `SUM(${part})` : part} AS TEXT) AS ${part}`);
		} else if (aggregate) parts.push(`${merge.toUpperCase()}(${name}) AS ${name}`);
		else parts.push(...measureColumns(name, merge));
	}
	return parts.join(", ");
}

/**
 * SQL that merges incoming values into a stored row; NULL (no data) never wins a min or max. A
 * packed rollup's incoming row is already merged with the stored one, so it replaces it.
 */
export function onConflictMerge(spec: RollupSpec, conflictKeys: readonly string[]): string {
	const sets: string[] = [];
	if (isPacked(spec)) {
		for (const column of sqlColumns(spec).filter((c) => !spec.keys.includes(c))) sets.push(`${column} = excluded.${column}`);
		return `ON CONFLICT (${conflictKeys.join(", ")}) DO UPDATE SET ${sets.join(", ")}`;
	}
	for (const [name, merge] of Object.entries(spec.measures)) {
		if (merge === "sum") sets.push(`${name} = ${name} + excluded.${name}`);
		else if (merge === "exact") {
			// Every SET expression reads the row as it was, so the carry uses the old low part.
			const lo = `${name}_lo + excluded.${name}_lo`;
			sets.push(
				`${name}_lo = (${lo}) % ${EXACT_SPLIT_SQL}`,
				`${name}_hi = ${name}_hi + excluded.${name}_hi + (${lo}) / ${EXACT_SPLIT_SQL}`,
			);
		} else if (merge === "min" || merge === "max")
			sets.push(`${name} = coalesce(${merge}(${name}, excluded.${name}), ${name}, excluded.${name})`);
		else throw new Error(`${spec.name}.${name} (${merge}) cannot merge in SQL`);
	}
	return `ON CONFLICT (${conflictKeys.join(", ")}) DO UPDATE SET ${sets.join(", ")}`;
}

/**
 * Merges `row` into `into` in place, by the spec's rules (exact sums in BigInt). `mergeText`, when
 * given, takes each text measure instead (to merge many rows' sketches at once); otherwise the
 * texts are merged here, pair by pair.
 */
export function mergeRow(
	spec: RollupSpec,
	into: RollupRow,
	row: RollupRow,
	mergeText?: (name: string, kind: TextMeasure, text: string | null) => void,
): void {
	for (const [name, merge] of Object.entries(spec.measures)) {
		const a = into[name] ?? null;
		const b = row[name] ?? null;
		if (merge === "exact") into[name] = (BigInt(a ?? 0) + BigInt(b ?? 0)).toString();
		else if (merge === "sum") into[name] = Number(a ?? 0) + Number(b ?? 0);
		else if (merge === "latest") {
			const at = `${name}_at`;
			const [x, y] = [into[at] ?? null, row[at] ?? null];
			// The later value wins; at the same instant the larger, so the merge is order-free.
			if (y !== null && (x === null || Number(y) > Number(x) || (y === x && Number(b) > Number(a)))) {
				into[at] = y;
				into[name] = b;
			}
		} else if (merge === "min" || merge === "max") {
			if (a === null || b === null) into[name] = a ?? b;
			else into[name] = merge === "min" ? Math.min(Number(a), Number(b)) : Math.max(Number(a), Number(b));
		} else if (mergeText) mergeText(name, merge, b as string | null);
		else into[name] = mergeMeasureText(merge, a as string | null, b as string | null);
	}
}

/**
 * Many rows merged into fewer, in place, with each merged row's text measures (sketches) decoded
 * once and encoded once however many rows it takes in: merged pair by pair, every row re-encoded
 * the growing sketch, a large share of a flush's and a report's CPU. A merged row's text measures
 * are final only after finish().
 */
export class RowMerge {
	private readonly texts = new Map<RollupRow, Map<string, TextMerge>>();

	constructor(private readonly spec: RollupSpec) {}

	/** Merges `row` into `into`, by the spec's rules. */
	into(into: RollupRow, row: RollupRow): void {
		mergeRow(this.spec, into, row, (name, kind, text) => {
			let merges = this.texts.get(into);
			if (!merges) this.texts.set(into, (merges = new Map()));
			let merge = merges.get(name);
			if (!merge) merges.set(name, (merge = new TextMerge(kind, (into[name] ?? null) as string | null)));
			merge.add(text);
		});
	}

	/** Writes every merged text measure into its row. */
	finish(): void {
		for (const [row, merges] of this.texts) for (const [name, merge] of merges) row[name] = merge.text();
		this.texts.clear();
	}
}

/** Merges rows into a map by their full key, each row copied before anything is merged into it. */
export function mergeInto(spec: RollupSpec, into: Map<string, RollupRow>, rows: Iterable<RollupRow>): void {
	const merging = new RowMerge(spec);
	for (const row of rows) {
		const key = rowKey(spec, row);
		const existing = into.get(key);
		if (existing) merging.into(existing, row);
		else into.set(key, { ...row });
	}
	merging.finish();
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
