// Timeseries helpers for the test/read suite: the /v1/query/timeseries answer, and the series expected from the events.
import { expect } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { getJson, type TestTenant } from "../helpers";
import { DAY, HOUR, iso, MINUTE } from "./query-helpers";

// ---- The answer ----

export interface SeriesAnswer {
	tenant: string;
	metric: string;
	interval: string;
	from: string;
	to: string;
	event: string | null;
	breakdown: string | null;
	series: { key: Record<string, string | null>; points: { start: string; end: string; value: number | null }[] }[];
}

export function timeseries(tenant: TestTenant, query: string): Promise<SeriesAnswer> {
	return getJson<SeriesAnswer>(`/v1/query/timeseries?${query}`, tenant.readKey);
}

/** Points of consecutive windows from the `starts` (the last one's end is `end`), with their values. */
export function points(starts: number[], end: number, values: (number | null)[]): { start: string; end: string; value: number | null }[] {
	expect(values.length).toBe(starts.length);
	return starts.map((start, i) => ({ start: iso(start), end: iso(starts[i + 1] ?? end), value: values[i]! }));
}

// ---- Expected timeseries, computed from the events ----

export type Interval = "minute" | "hour" | "day" | "week" | "month";

/** The start of the UTC window holding `ms`: weeks from Monday 00:00, months from the 1st. */
export function windowStart(ms: number, interval: Interval): number {
	const d = new Date(ms);
	const [y, m, day] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
	if (interval === "minute") return ms - (ms % MINUTE);
	if (interval === "hour") return ms - (ms % HOUR);
	if (interval === "day") return Date.UTC(y, m, day);
	if (interval === "week") return Date.UTC(y, m, day - ((d.getUTCDay() + 6) % 7));
	return Date.UTC(y, m, 1);
}

/** The starts of the windows covering [from, to), and the last one's end. */
export function windowsOver(from: number, to: number, interval: Interval): { starts: number[]; end: number } {
	const starts: number[] = [];
	let start = windowStart(from, interval);
	while (start < to) {
		starts.push(start);
		const d = new Date(start);
		start =
			interval === "week"
				? start + 7 * DAY
				: interval === "month"
					? Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
					: start + { minute: MINUTE, hour: HOUR, day: DAY }[interval];
	}
	return { starts, end: start };
}

export type Breakdown = "event" | "route" | "status" | "country";

function keyOf(event: QueuedEvent, breakdown: Breakdown | undefined): Record<string, string | null> {
	if (breakdown === undefined) return {};
	if (breakdown === "event") return { event: event.event };
	if (breakdown === "status") {
		const status = event.performance?.statusCode;
		return { status: status === undefined ? null : String(status) };
	}
	return { [breakdown]: event[breakdown] ?? null };
}

/**
 * The series an answer holds for `events` (count, errors, error_rate, or unique_users while exact):
 * one per key, ordered by its value (null first); without a breakdown, always the one series {}.
 */
export function expectedSeries(
	events: QueuedEvent[],
	windows: { starts: number[]; end: number },
	metric: "count" | "errors" | "error_rate" | "unique_users",
	breakdown?: Breakdown,
	eventName?: string,
): SeriesAnswer["series"] {
	const { starts, end } = windows;
	const series = new Map<
		string,
		{ key: Record<string, string | null>; windows: { count: number; errors: number; users: Set<string> }[] }
	>();
	if (breakdown === undefined) series.set("{}", { key: {}, windows: [] });
	for (const event of events) {
		if (event.timestamp < starts[0]! || event.timestamp >= end || (eventName !== undefined && event.event !== eventName)) continue;
		const key = keyOf(event, breakdown);
		const id = JSON.stringify(key);
		if (!series.has(id)) series.set(id, { key, windows: [] });
		const i = starts.findLastIndex((start) => start <= event.timestamp);
		const w = (series.get(id)!.windows[i] ??= { count: 0, errors: 0, users: new Set() });
		w.count++;
		if ((event.performance?.statusCode ?? 0) >= 500) w.errors++;
		if (event.userId !== undefined) w.users.add(event.userId);
	}
	const sortKey = (key: Record<string, string | null>) => Object.values(key)[0] ?? "";
	return [...series.values()]
		.sort((a, b) => (sortKey(a.key) < sortKey(b.key) ? -1 : sortKey(a.key) > sortKey(b.key) ? 1 : 0))
		.map(({ key, windows: byWindow }) => ({
			key,
			points: points(
				starts,
				end,
				starts.map((_, i) => {
					const w = byWindow[i];
					if (metric === "count") return w?.count ?? 0;
					if (metric === "errors") return w?.errors ?? 0;
					if (metric === "unique_users") return w?.users.size ?? 0;
					return w ? w.errors / w.count : null;
				}),
			),
		}));
}
