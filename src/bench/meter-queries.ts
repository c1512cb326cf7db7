// 8. Meters, query latency: one tenant with one meter and a month of hourly data, sent through
// POST /v1/events and flushed; then sequential GET /v1/meters/:slug/query by hour and
// GET /v1/query/timeseries?metric=duration_p99 by day over the month, timed until the answer is read.
import { benchEvent, ControlPlane, countStatus, EVENT_NAMES, lanes, postEvents, totalOf, waitFor, type StatusCounts } from "./support.ts";

export interface QueryLatency {
	path: string;
	queries: number;
	/** Answers that were 200 and held data (timed ones only). */
	ok: number;
	empty: number;
	non2xx: StatusCounts;
	latencyMs: { p50: number; p99: number; min: number; max: number; mean: number };
	/** Values in the last good answer: meter rows (window × group), or series points. */
	points: number;
	/** The first failed answer's status and start of its body, to tell why. */
	firstError?: string;
}

export interface QueryOptions {
	queries: number;
	hours: number;
	eventsPerHour: number;
	customers: number;
}

export interface QueryResult {
	hours: number;
	eventsPerHour: number;
	events: number;
	meter: QueryLatency;
	timeseries: QueryLatency;
}

const BATCH = 100;
const HOUR_MS = 3_600_000;
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

function latencyOf(samples: number[]): QueryLatency["latencyMs"] {
	if (samples.length === 0) return { p50: NaN, p99: NaN, min: NaN, max: NaN, mean: NaN };
	const sorted = [...samples].sort((a, b) => a - b);
	const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
	return { p50: at(0.5), p99: at(0.99), min: sorted[0]!, max: sorted[sorted.length - 1]!, mean: mean(sorted) };
}

/** Times `queries` sequential GETs of `path`; `pointsOf` counts an answer's points (0 = empty). */
async function timeQuery(control: ControlPlane, key: string, path: string, queries: number, pointsOf: (body: unknown) => number) {
	const result: QueryLatency = { path, queries, ok: 0, empty: 0, non2xx: {}, latencyMs: latencyOf([]), points: 0 };
	const samples: number[] = [];
	for (let i = 0; i <= queries; i++) {
		const start = performance.now();
		let status = 0;
		let text = "";
		try {
			const response = await control.pipeline.call(path, { key });
			status = response.status;
			text = await response.text();
		} catch {
			status = 0;
		}
		const ms = performance.now() - start;
		if (i === 0) continue; // the warm-up
		if (status !== 200) {
			// Only a 200 is an answer here (countStatus would let another 2xx pass).
			result.non2xx[String(status)] = (result.non2xx[String(status)] ?? 0) + 1;
			result.firstError ??= `${status} ${text.slice(0, 300)}`;
			continue;
		}
		let points = 0;
		try {
			points = pointsOf(JSON.parse(text));
		} catch {
			points = 0;
		}
		if (points === 0) {
			result.empty++;
			result.firstError ??= `200 with no data: ${text.slice(0, 300)}`;
		} else {
			result.ok++;
			result.points = points;
			samples.push(ms);
		}
	}
	result.latencyMs = latencyOf(samples);
	return result;
}

export async function measureQueries(
	control: ControlPlane,
	options: QueryOptions,
	step: (fraction: number, detail: string) => void,
): Promise<QueryResult> {
	const tenant = await control.createTenant("bench-meters-query");
	const slug = "bench_month_usage";
	await control.json("/v1/meters", {
		method: "POST",
		key: tenant.readKey,
		body: JSON.stringify({
			slug,
			eventType: EVENT_NAMES[1],
			aggregation: "SUM",
			valueProperty: "usage.quantity",
			groupBy: { plan: "plan" },
		}),
	});
	// The month's events, newest first: `eventsPerHour` in each of the last `hours` hours, all of one event type.
	const now = Date.now();
	const total = options.hours * options.eventsPerHour;
	const events = Array.from({ length: total }, (_, n) => ({
		...benchEvent(n, {
			timestamp:
				now -
				60_000 -
				Math.floor(n / options.eventsPerHour) * HOUR_MS -
				(n % options.eventsPerHour) * (HOUR_MS / options.eventsPerHour),
			sku: "meters-query",
			customerId: `customer-${n % options.customers}`,
		}),
		event: EVENT_NAMES[1],
	}));
	const non2xx: StatusCounts = {};
	let accepted = 0;
	let next = 0;
	await lanes(4, async () => {
		const r = next++;
		if (r * BATCH >= total) return false;
		const chunk = events.slice(r * BATCH, (r + 1) * BATCH);
		const status = await postEvents(control.pipeline, tenant.writeKey, JSON.stringify({ events: chunk }));
		countStatus(non2xx, status);
		if (status === 202) accepted += chunk.length;
		return true;
	});
	if (totalOf(non2xx) > 0) throw new Error(`meters: seeding the month was refused: ${JSON.stringify(non2xx)}`);
	await waitFor("the month's events to be consumed", async () => (await control.metrics(tenant)).consumed >= accepted, 120_000, 250);
	await control.flush(tenant);

	// Meter ranges must be whole minutes: the month up to the minute after now.
	const end = Math.ceil(now / 60_000) * 60_000;
	const from = new Date(end - options.hours * HOUR_MS).toISOString();
	const to = new Date(end).toISOString();
	step(0.3, "query latency: the meter by hour");
	const meter = await timeQuery(
		control,
		tenant.readKey,
		`/v1/meters/${slug}/query?windowSize=HOUR&from=${from}&to=${to}`,
		options.queries,
		(body) => (body as { data?: unknown[] }).data?.length ?? 0,
	);
	step(0.65, "query latency: duration_p99 by day");
	const timeseries = await timeQuery(
		control,
		tenant.readKey,
		`/v1/query/timeseries?metric=duration_p99&interval=day&from=${from}&to=${to}`,
		options.queries,
		(body) => {
			const series = (body as { series?: { points: { value: number | null }[] }[] }).series ?? [];
			// An answer with no value in any window is empty, even though it lists the windows.
			return series.some((s) => s.points.some((p) => p.value !== null)) ? series.reduce((sum, s) => sum + s.points.length, 0) : 0;
		},
	);
	step(1, "done");
	return { hours: options.hours, eventsPerHour: options.eventsPerHour, events: accepted, meter, timeseries };
}
