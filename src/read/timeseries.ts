// GET /v1/query/timeseries: counts, errors, error rates, duration percentiles and unique users per
// time window, for one event or all, optionally broken down by event, route, status or country, or
// narrowed to one route, status or country.
// Answers come from the series rollups (D1's and the aggregator's unflushed minutes), merged per
// window: percentiles from DDSketches and unique users from HyperLogLogs, so DAU, WAU and MAU are
// one query each.
import { SERIES_MINUTE_RETENTION_MS, type SeriesDimension } from "../aggregator/fold-series.js";
import { FIELD_LIMITS } from "../event/model.js";
import { authenticate } from "../http/auth.js";
import { onlyQuery } from "../http/params.js";
import { invalidField, json } from "../shared/errors.js";
import { compareCodePoints } from "../shared/order.js";
import { countUnique, decodeUnique, emptySketch, mergeSketch, type UniqueSketch } from "../shared/hll.js";
import { decodeDurations, emptyDurations, mergeDurations, quantile, type DurationSketch } from "../shared/quantiles.js";
import { SERIES_ROLLUP, type RollupRow } from "../sinks/rollups.js";
import { livePackedRows } from "./live.js";
import { currentUtcDay, parseInstant } from "./range.js";
import { windowsOf, Zone, type WindowSize } from "./windows.js";

export const METRICS = ["count", "errors", "error_rate", "duration_p50", "duration_p95", "duration_p99", "unique_users"] as const;
type Metric = (typeof METRICS)[number];
const INTERVALS: readonly WindowSize[] = ["minute", "hour", "day", "week", "month"];
const BREAKDOWNS = ["event", "route", "status", "country"] as const;
type Breakdown = (typeof BREAKDOWNS)[number];
/** An answer holds at most this many points (windows × series). */
export const MAX_POINTS = 10_000;

/** The stored grain a window size is built from: weeks and months from days. */
const GRAIN: Record<WindowSize, "minute" | "hour" | "day"> = { minute: "minute", hour: "hour", day: "day", week: "day", month: "day" };

interface Window {
	count: number;
	errors: number;
	durations: DurationSketch;
	users: UniqueSketch;
}

function oneOf<T extends string>(url: URL, name: string, allowed: readonly T[], fallback?: T): T | undefined {
	const value = url.searchParams.get(name);
	if (value === null) return fallback;
	if (!(allowed as readonly string[]).includes(value)) throw invalidField(name, `must be one of ${allowed.join(", ")}`);
	return value as T;
}

export async function getTimeseries(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const url = new URL(request.url);
	onlyQuery(url, ["metric", "event", "interval", "from", "to", "breakdown", ...DIMENSION_FILTERS]);
	if (!url.searchParams.has("metric")) throw invalidField("metric", `is required: one of ${METRICS.join(", ")}`);
	const metric = oneOf(url, "metric", METRICS)!;
	const interval = oneOf(url, "interval", INTERVALS, "hour")!;
	const breakdown = oneOf(url, "breakdown", BREAKDOWNS);
	const event = url.searchParams.get("event");
	const { min, max } = FIELD_LIMITS.event;
	if (event !== null && (event.length < min || event.length > max)) throw invalidField("event", `must be ${min}-${max} characters`);
	const [defaultFrom, defaultTo] = currentUtcDay(new Date());
	const from = (parseInstant(url.searchParams.get("from"), "from") ?? defaultFrom).getTime();
	const to = (parseInstant(url.searchParams.get("to"), "to") ?? defaultTo).getTime();
	if (to <= from) throw invalidField("to", "must be after from");
	const zone = new Zone("UTC");
	const windows = windowsOf(zone, from, to, interval, MAX_POINTS, "interval");
	const start = windows[0]![0];
	const end = windows[windows.length - 1]![1];
	if (interval === "minute" && start < Date.now() - SERIES_MINUTE_RETENTION_MS) {
		throw invalidField(
			"from",
			`minute intervals cover the last ${SERIES_MINUTE_RETENTION_MS / 86_400_000} days; older series are kept per hour`,
		);
	}

	const filter = dimensionFilter(url, breakdown);
	const dim: SeriesDimension = filter?.dim ?? (breakdown === undefined || breakdown === "event" ? "" : breakdown);
	const where: Record<string, string> = { dim };
	if (filter) where.value = filter.value;
	if (event !== null) where.event = event;
	const grain = GRAIN[interval];
	const rows = await livePackedRows(
		env,
		tenant,
		SERIES_ROLLUP,
		iso(start),
		iso(end),
		{ ...where, grain },
		{
			// The aggregator holds minutes only: they are grouped into the grain here.
			pendingWhere: { ...where, grain: "minute" },
		},
	);

	const series = new Map<string, { key: Record<string, string | null>; windows: Map<number, Window> }>();
	for (const row of rows) {
		const key = seriesKey(breakdown, row);
		const id = JSON.stringify(key);
		let entry = series.get(id);
		if (!entry) series.set(id, (entry = { key, windows: new Map() }));
		const windowStart = zone.windowStart(Date.parse(row.bucket as string), interval);
		let window = entry.windows.get(windowStart);
		if (!window) entry.windows.set(windowStart, (window = { count: 0, errors: 0, durations: emptyDurations(), users: emptySketch() }));
		window.count += row.count as number;
		window.errors += row.errors as number;
		if (metric.startsWith("duration_")) mergeDurations(window.durations, decodeDurations(row.durations as string));
		if (metric === "unique_users") mergeSketch(window.users, decodeUnique(row.users as string));
	}
	if (series.size * windows.length > MAX_POINTS) {
		throw invalidField(
			"breakdown",
			`the answer would hold ${series.size * windows.length} points, more than ${MAX_POINTS}; narrow the range, use a larger interval or filter by event`,
		);
	}
	const sorted = [...series.values()].sort((a, b) => compareKeys(a.key, b.key));
	// With no data, the one series of an unbroken query still answers every window.
	if (sorted.length === 0 && breakdown === undefined) sorted.push({ key: {}, windows: new Map() });
	return json({
		tenant,
		metric,
		interval,
		from: iso(start),
		to: iso(end),
		event,
		...(filter ? { [filter.dim]: filter.value === "" ? null : filter.value } : {}),
		breakdown: breakdown ?? null,
		series: sorted.map(({ key, windows: byStart }) => ({
			key,
			points: windows.map(([windowStart, windowEnd]) => ({
				start: iso(windowStart),
				end: iso(windowEnd),
				value: valueOf(metric, byStart.get(windowStart)),
			})),
		})),
	});
}

/** The dimensions a query may be narrowed to, one at a time (`none` selects the events without one). */
const DIMENSION_FILTERS = ["route", "status", "country"] as const;

/**
 * The one route, status or country filter, if any. The series keep each dimension on its own rows
 * (per event), so a filtered query can be broken down by event only.
 */
function dimensionFilter(url: URL, breakdown: Breakdown | undefined): { dim: (typeof DIMENSION_FILTERS)[number]; value: string } | null {
	const given = DIMENSION_FILTERS.filter((name) => url.searchParams.has(name));
	if (given.length === 0) return null;
	if (given.length > 1)
		throw invalidField(given[1]!, `cannot be combined with ${given[0]}: filter by one of ${DIMENSION_FILTERS.join(", ")}`);
	const dim = given[0]!;
	if (breakdown !== undefined && breakdown !== "event") throw invalidField("breakdown", `must be event or absent with a ${dim} filter`);
	const text = url.searchParams.get(dim)!;
	const value = text === "none" ? "" : text;
	const limit = dim === "route" ? FIELD_LIMITS.route.max : dim === "country" ? 2 : 3;
	if (text.length === 0 || value.length > limit) throw invalidField(dim, `must be 1-${limit} characters, or none`);
	return { dim, value };
}

function seriesKey(breakdown: Breakdown | undefined, row: RollupRow): Record<string, string | null> {
	if (breakdown === undefined) return {};
	if (breakdown === "event") return { event: row.event as string };
	// "" is "the event had none": answered as null.
	return { [breakdown]: row.value === "" ? null : (row.value as string) };
}

function compareKeys(a: Record<string, string | null>, b: Record<string, string | null>): number {
	return compareCodePoints(Object.values(a)[0] ?? "", Object.values(b)[0] ?? "");
}

/** A window's value: counts are 0 without events; a rate or a percentile without data is null. */
function valueOf(metric: Metric, window: Window | undefined): number | null {
	const count = window?.count ?? 0;
	switch (metric) {
		case "count":
			return count;
		case "errors":
			return window?.errors ?? 0;
		case "error_rate":
			return count === 0 ? null : window!.errors / count;
		case "unique_users":
			return window ? countUnique(window.users) : 0;
		default: {
			const q = { duration_p50: 0.5, duration_p95: 0.95, duration_p99: 0.99 }[metric];
			return window ? quantile(window.durations, q) : null;
		}
	}
}

function iso(ms: number): string {
	return new Date(ms).toISOString();
}
