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

/** The dimensions a series is broken down by; "" is the event's total. */
export const SERIES_DIMENSIONS = ["", "route", "status", "country"] as const;
export type SeriesDimension = (typeof SERIES_DIMENSIONS)[number];

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

/** The slice's series rows per minute. `routeOf` gives the route to record: the event's, or "(other)" past the tenant's route cap. */
export function foldSeries(
	events: QueuedEvent[],
	minuteOf: (ms: number) => string,
	routeOf: (event: QueuedEvent) => string,
): Map<string, RollupRow> {
	const minutes = new Map<string, FoldingRow>();
	for (const event of events) {
		const minute = minuteOf(event.timestamp);
		const { duration, statusCode } = event.performance ?? {};
		const error = statusCode !== undefined && statusCode >= 500;
		const user = event.userId === undefined ? null : hash53(event.userId);
		const values: [SeriesDimension, string][] = [
			["", ""],
			["route", routeOf(event)],
			["status", statusCode === undefined ? "" : String(statusCode)],
			["country", event.country ?? ""],
		];
		for (const [dim, value] of values) {
			// The minute has a fixed length, the value's is spelled out and the name comes last: an unambiguous key.
			const key = `${minute}|${dim}|${value.length}:${value}|${event.event}`;
			let row = minutes.get(key);
			if (!row) minutes.set(key, (row = emptyRow(event.event, dim, value, minute)));
			row.count++;
			if (error) row.errors++;
			if (duration !== undefined) addDuration(row.durations, duration);
			if (user !== null) addHash(row.users, user);
		}
	}
	return new Map([...minutes].map(([key, row]) => [key, encode("minute", row)]));
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
