// Folding events into the query API's series: per event name, one dimension's value (the total,
// route, status or country) and bucket, a count, the errors, a duration sketch and a unique-user
// sketch. An ingest folds its events per minute only (four updates per event); a flush expands
// the merged minutes into their hours and days, so the packed deltas hold each sketch once.
import type { QueuedEvent } from "../event/model.js";
import type { RollupRow } from "../sinks/rollups.js";
import { addHash, decodeUnique, emptySketch, encodeUnique, hash53, mergeSketch, type UniqueSketch } from "../shared/hll.js";
import { addDuration, decodeDurations, emptyDurations, encodeDurations, mergeDurations, type DurationSketch } from "../shared/quantiles.js";

/** Series minutes stay in D1 this long (then only hours and days remain), the same as event stats. */
export const SERIES_MINUTE_RETENTION_MS = 7 * 86_400_000;

/** The dimensions a series is broken down by, besides "" (the event's total), in MinuteGroup's order. */
const VALUE_DIMENSIONS = ["route", "status", "country"] as const;
export type SeriesDimension = "" | (typeof VALUE_DIMENSIONS)[number];

interface FoldingRow {
	event: string;
	dim: SeriesDimension;
	value: string;
	bucket: string;
	count: number;
	errors: number;
	durations: DurationSketch;
	users: UniqueSketch;
}

/** One minute's rows of one event name: the total, and per dimension a row per value. */
interface MinuteGroup {
	total: FoldingRow;
	byValue: [route: Map<string, FoldingRow>, status: Map<string, FoldingRow>, country: Map<string, FoldingRow>];
}

/**
 * The slice's series rows per minute. `routeOf` gives the route to record: the event's, or
 * "(other)" past the tenant's route cap. Rows are found through one key per event (its minute and
 * name) and then one small map per dimension, not a composite key per update: this runs on every
 * ingest, and building four key strings per event was a visible share of its CPU.
 */
export function foldSeries(
	events: QueuedEvent[],
	minuteOf: (ms: number) => string,
	routeOf: (event: QueuedEvent) => string,
): Map<string, RollupRow> {
	const groups = new Map<string, MinuteGroup>();
	for (const event of events) {
		const minute = minuteOf(event.timestamp);
		// The minute's ISO text has a fixed length, so minute + name is unambiguous.
		const groupKey = minute + event.event;
		let group = groups.get(groupKey);
		if (!group) {
			group = { total: emptyRow(event.event, "", "", minute), byValue: [new Map(), new Map(), new Map()] };
			groups.set(groupKey, group);
		}
		const { duration, statusCode } = event.performance ?? {};
		const error = statusCode !== undefined && statusCode >= 500;
		const user = event.userId === undefined ? null : hash53(event.userId);
		for (const row of [
			group.total,
			rowOf(group, 0, routeOf(event)),
			rowOf(group, 1, statusCode === undefined ? "" : String(statusCode)),
			rowOf(group, 2, event.country ?? ""),
		]) {
			row.count++;
			if (error) row.errors++;
			if (duration !== undefined) addDuration(row.durations, duration);
			if (user !== null) addHash(row.users, user);
		}
	}
	const out = new Map<string, RollupRow>();
	for (const group of groups.values()) {
		for (const row of [group.total, ...group.byValue.flatMap((rows) => [...rows.values()])]) out.set(keyOf(row), encode("minute", row));
	}
	return out;
}

function rowOf(group: MinuteGroup, dimension: 0 | 1 | 2, value: string): FoldingRow {
	const rows = group.byValue[dimension];
	let row = rows.get(value);
	if (!row) rows.set(value, (row = emptyRow(group.total.event, VALUE_DIMENSIONS[dimension], value, group.total.bucket)));
	return row;
}

/**
 * A flush's series rows: its merged minutes (those still within the retention) and the hours and
 * days they make up, ready to merge into D1.
 */
export function expandSeries(minutes: RollupRow[], now: number): RollupRow[] {
	const out: RollupRow[] = [];
	const coarser = new Map<string, FoldingRow>();
	const cutoff = now - SERIES_MINUTE_RETENTION_MS;
	for (const minute of minutes) {
		if (Date.parse(minute.bucket as string) >= cutoff) out.push(minute);
		const row = decode(minute);
		for (const [grain, bucket] of [
			["hour", `${row.bucket.slice(0, 13)}:00:00.000Z`],
			["day", `${row.bucket.slice(0, 10)}T00:00:00.000Z`],
		] as const) {
			const key = `${grain}|${keyOf({ ...row, bucket })}`;
			const into = coarser.get(key);
			if (!into) coarser.set(key, { ...row, bucket, durations: copyDurations(row.durations), users: copyUsers(row.users) });
			else {
				into.count += row.count;
				into.errors += row.errors;
				mergeDurations(into.durations, row.durations);
				mergeSketch(into.users, row.users);
			}
		}
	}
	for (const [key, row] of coarser) out.push(encode(key.slice(0, key.indexOf("|")) as "hour" | "day", row));
	return out;
}

function decode(row: RollupRow): FoldingRow {
	return {
		event: row.event as string,
		dim: row.dim as SeriesDimension,
		value: row.value as string,
		bucket: row.bucket as string,
		count: row.count as number,
		errors: row.errors as number,
		durations: decodeDurations(row.durations as string),
		users: decodeUnique(row.users as string),
	};
}

function keyOf(row: Pick<FoldingRow, "bucket" | "dim" | "value" | "event">): string {
	return `${row.bucket}|${row.dim}|${row.value.length}:${row.value}|${row.event}`;
}

function emptyRow(event: string, dim: SeriesDimension, value: string, bucket: string): FoldingRow {
	return { event, dim, value, bucket, count: 0, errors: 0, durations: emptyDurations(), users: emptySketch() };
}

function copyDurations(sketch: DurationSketch): DurationSketch {
	const copy = emptyDurations();
	mergeDurations(copy, sketch);
	return copy;
}

function copyUsers(sketch: UniqueSketch): UniqueSketch {
	const copy = emptySketch();
	mergeSketch(copy, sketch);
	return copy;
}

function encode(grain: "minute" | "hour" | "day", row: FoldingRow): RollupRow {
	return {
		grain,
		event: row.event,
		dim: row.dim,
		value: row.value,
		bucket: row.bucket,
		count: row.count,
		errors: row.errors,
		durations: encodeDurations(row.durations),
		users: encodeUnique(row.users),
	};
}
