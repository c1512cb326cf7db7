// Folding new events into rollup rows: counters per event name and minute, exact usage per sku,
// unit and hour, and usage for a closed billing month into that month's adjustment line.
import type { QueuedEvent } from "../events/schema";
import { ADJUSTMENT_ROLLUP, bucketStart, EVENT_ROLLUP, monthOf, onConflictMerge, ROLLUPS, sqlColumns, sqlValues, USAGE_ROLLUP, type RollupRow, type RollupSpec } from "./rollups";
import type { Store } from "./state";

export type Folded = Map<RollupSpec, Map<string, RollupRow>>;

/** The ISO start of the UTC month `ms` falls in. */
export function monthStart(ms: number): string {
	return `${monthOf(ms)}-01T00:00:00.000Z`;
}

/**
 * One slice's rollup rows, summed in memory so each key costs one upsert. Usage whose month is in
 * `closed` is booked as an adjustment into the month of `now`.
 */
export function fold(events: QueuedEvent[], closed: ReadonlySet<string>, now: number): Folded {
	const folded: Folded = new Map(ROLLUPS.map((spec) => [spec, new Map()]));
	for (const event of events) {
		addEvent(folded.get(EVENT_ROLLUP)!, event);
		if (!event.usage) continue;
		const { sku, unit, micros } = event.usage;
		const period = monthOf(event.timestamp);
		if (closed.has(period)) addUsage(folded.get(ADJUSTMENT_ROLLUP)!, { sku, unit, period, booked: monthStart(now) }, micros);
		else addUsage(folded.get(USAGE_ROLLUP)!, { sku, unit, hour: bucketStart(event.timestamp, "hour") }, micros);
	}
	return folded;
}

function addEvent(rows: Map<string, RollupRow>, event: QueuedEvent): void {
	const minute = bucketStart(event.timestamp, "minute");
	const key = JSON.stringify([event.event, minute]);
	let row = rows.get(key);
	if (!row) {
		row = { event: event.event, minute, count: 0, errors: 0, duration_count: 0, duration_sum: 0, duration_min: null, duration_max: null };
		rows.set(key, row);
	}
	(row.count as number)++;
	const { duration, statusCode } = event.performance ?? {};
	if (statusCode !== undefined && statusCode >= 500) (row.errors as number)++;
	if (duration !== undefined) {
		(row.duration_count as number)++;
		(row.duration_sum as number) += duration;
		row.duration_min = row.duration_min === null ? duration : Math.min(row.duration_min as number, duration);
		row.duration_max = row.duration_max === null ? duration : Math.max(row.duration_max as number, duration);
	}
}

/** Sums micro-units as BigInt text: a slice of large quantities passes 2^53 quickly. */
function addUsage(rows: Map<string, RollupRow>, keys: Record<string, string>, micros: number): void {
	const key = JSON.stringify(Object.values(keys));
	const row = rows.get(key);
	if (row) {
		row.micros = (BigInt(row.micros as string) + BigInt(micros)).toString();
		(row.events as number)++;
	} else rows.set(key, { ...keys, micros: String(micros), events: 1 });
}

const upsertSql = new Map<RollupSpec, string>(
	ROLLUPS.map((spec) => {
		const columns = sqlColumns(spec);
		return [spec, `INSERT INTO ${spec.localTable} (batch, ${columns.join(", ")}) VALUES (0, ${columns.map(() => "?").join(", ")}) ${onConflictMerge(spec, ["batch", ...spec.keys])}`];
	}),
);

/** Adds folded rows to the open (unsealed) deltas: one upsert per row. Call inside a transaction. */
export function addToOpen(store: Store, folded: Folded): void {
	for (const [spec, rows] of folded) {
		const sql = upsertSql.get(spec)!;
		for (const row of rows.values()) store.exec(sql, ...sqlValues(spec, row));
	}
}
