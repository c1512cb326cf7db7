// Folding new events into rollup rows: counters per event name and minute, exact usage per
// customer, sku, unit and hour, usage for a closed billing month into that month's adjustment
// line, and (packed) the tenant's meters and the query API's series.
import type { QueuedEvent } from "../event/model.js";
import {
	ADJUSTMENT_ROLLUP,
	EVENT_ROLLUP,
	METER_ROLLUP,
	monthOf,
	onConflictMerge,
	ROLLUPS,
	SERIES_ROLLUP,
	sqlColumns,
	sqlValues,
	TABLE_ROLLUPS,
	USAGE_ROLLUP,
	type RollupRow,
	type RollupSpec,
} from "../sinks/rollups.js";
import { foldMeters } from "./fold-meters.js";
import type { ActiveMeter } from "./meter-definitions.js";
import { foldSeries } from "./fold-series.js";
import type { MeterGroups } from "./meter-groups.js";
import { appendPacked } from "./packed.js";
import type { Store } from "./state.js";

export type Folded = Map<RollupSpec, Map<string, RollupRow>>;

/** What a fold needs besides the events. */
export interface FoldContext {
	/** Closed billing months: their usage becomes adjustments. */
	closed: ReadonlySet<string>;
	now: number;
	meters: readonly ActiveMeter[];
	groups: MeterGroups;
	/** The route to record for an event: its own, or "(other)" past the tenant's route cap. */
	routeOf: (event: QueuedEvent) => string;
}

export interface FoldResult {
	folded: Folded;
	meterSkipped: number;
	meterOther: number;
}

/** The ISO start of the UTC month `ms` falls in. */
export function monthStart(ms: number): string {
	return `${monthOf(ms)}-01T00:00:00.000Z`;
}

/**
 * One slice's rollup rows, summed in memory so each key costs one upsert (or, packed, one entry of
 * the slice's chunk). Usage whose month is closed is booked as an adjustment into the month of
 * `now`, and a meter's reading for a closed month counts in the minute of `now`. Bucket names are computed once per bucket, not per event: a slice's events mostly share
 * a few minutes.
 */
export function fold(events: QueuedEvent[], context: FoldContext): FoldResult {
	const { closed, now } = context;
	const folded: Folded = new Map(ROLLUPS.map((spec) => [spec, new Map()]));
	const eventRows = folded.get(EVENT_ROLLUP)!;
	const minutes = bucketNames(60_000);
	const hours = bucketNames(3_600_000);
	const booked = monthStart(now);
	for (const event of events) {
		addEvent(eventRows, event, minutes(event.timestamp));
		if (!event.usage) continue;
		const { sku, unit, micros } = event.usage;
		const customer = event.customerId ?? "";
		const hour = hours(event.timestamp);
		const period = hour.slice(0, 7);
		// The bucket's ISO text has a fixed length and the customer's and sku's lengths are spelled out, so the key is unambiguous.
		const skuKey = `${customer.length}:${customer}${sku.length}:${sku}${unit}`;
		if (closed.has(period)) addUsage(folded.get(ADJUSTMENT_ROLLUP)!, period + skuKey, { customer, sku, unit, period, booked }, micros);
		else addUsage(folded.get(USAGE_ROLLUP)!, hour + skuKey, { customer, sku, unit, hour }, micros);
	}
	// A meter's late event for a closed month counts in the minute it arrived in, as late usage is
	// booked into the month it arrives in: a closed month's meters, like its invoices, never change.
	const arrival = minutes(now);
	const meterMinute = (ms: number) => {
		const minute = minutes(ms);
		return closed.has(minute.slice(0, 7)) ? arrival : minute;
	};
	const meters = foldMeters(events, context.meters, context.groups, meterMinute);
	folded.set(METER_ROLLUP, meters.rows);
	folded.set(SERIES_ROLLUP, foldSeries(events, minutes, context.routeOf));
	return { folded, meterSkipped: meters.skipped, meterOther: meters.other };
}

/** Epoch ms → the ISO start of its bucket of `step` ms, each bucket's text built once. */
export function bucketNames(step: number): (ms: number) => string {
	const names = new Map<number, string>();
	return (ms) => {
		const start = ms - (ms % step);
		let name = names.get(start);
		if (name === undefined) names.set(start, (name = new Date(start).toISOString()));
		return name;
	};
}

function addEvent(rows: Map<string, RollupRow>, event: QueuedEvent, minute: string): void {
	const key = minute + event.event;
	let row = rows.get(key);
	if (!row) {
		row = {
			event: event.event,
			minute,
			count: 0,
			errors: 0,
			duration_count: 0,
			duration_sum: 0,
			duration_min: null,
			duration_max: null,
		};
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

/** Sums micro-units as a number while that is exact, then as BigInt text (a slice of large quantities passes 2^53 quickly). */
function addUsage(rows: Map<string, RollupRow>, key: string, keys: Record<string, string>, micros: number): void {
	const row = rows.get(key);
	if (!row) {
		rows.set(key, { ...keys, micros, events: 1 });
		return;
	}
	const sum = typeof row.micros === "number" ? row.micros + micros : NaN;
	row.micros = Number.isSafeInteger(sum) ? sum : (BigInt(row.micros!) + BigInt(micros)).toString();
	(row.events as number)++;
}

const MAX_BINDS = 100;

/** `INSERT … VALUES (…), (…) … ON CONFLICT` for `rows` rows of a spec, each row's batch 0. */
function upsertSql(spec: RollupSpec, rows: number): string {
	const columns = sqlColumns(spec);
	const tuple = `(0, ${columns.map(() => "?").join(", ")})`;
	return `INSERT INTO ${spec.localTable} (batch, ${columns.join(", ")}) VALUES ${Array.from({ length: rows }, () => tuple).join(", ")} ${onConflictMerge(spec, ["batch", ...spec.keys])}`;
}

/**
 * Adds folded rows to the open (unsealed) deltas, as few multi-row upserts as the bind limit
 * allows: each statement has a fixed cost, and an ingest runs this for every RPC. Call inside a
 * transaction.
 */
export function addToOpen(store: Store, folded: Folded): void {
	appendPacked(store, folded);
	for (const spec of TABLE_ROLLUPS) {
		const rows = folded.get(spec)!;
		const perStatement = Math.floor(MAX_BINDS / sqlColumns(spec).length);
		const all = [...rows.values()];
		for (let start = 0; start < all.length; start += perStatement) {
			const chunk = all.slice(start, start + perStatement);
			store.exec(upsertSql(spec, chunk.length), ...chunk.flatMap((row) => sqlValues(spec, row)));
		}
	}
}
