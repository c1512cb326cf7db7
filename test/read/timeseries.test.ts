// GET /v1/query/timeseries: exact counts, errors and error rates per UTC window, the breakdowns by
// event, route, status and country (null when the event had none), windows across hour and day
// boundaries, from and to rounded out to whole windows, and the empty answers.
import { describe, expect, it } from "vitest";
import { createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import { feed, HOUR, iso, MINUTE, queued } from "./query-helpers";
import { expectedSeries, points, timeseries, windowsOver } from "./series-helpers";

// Saturday 20 March 2100, 15:00 UTC: the tests' events lie in the hours before it.
const NOW = Date.UTC(2100, 2, 20, 15);
useFrozenClock(() => freezeClockAt(NOW));

const H12 = Date.UTC(2100, 2, 20, 12);
const H13 = H12 + HOUR;
const H14 = H13 + HOUR;
const RANGE = `from=${iso(H12)}&to=${iso(H14 + HOUR)}`;

/** Requests in hour 12 (statuses either side of 500), one at 13:00 sharp, none in hour 14, and page views without performance data. */
const requests = () => [
	queued({ timestamp: H12 + 5 * MINUTE, performance: { statusCode: 200, duration: 10 } }),
	queued({ timestamp: H12 + 5 * MINUTE, performance: { statusCode: 503, duration: 20 } }),
	queued({ timestamp: H12 + 30 * MINUTE, performance: { statusCode: 500 } }),
	queued({ timestamp: H12 + 31 * MINUTE, performance: { statusCode: 499 } }),
	queued({ timestamp: H13 - 1, performance: { statusCode: 599 } }),
	queued({ timestamp: H13, performance: { statusCode: 200 } }),
	queued({ event: "page_view", timestamp: H12 + 10 * MINUTE }),
	queued({ event: "page_view", timestamp: H13 + 59 * MINUTE }),
];

function answer(tenant: TestTenant, metric: string, rest: Partial<Record<string, unknown>> = {}) {
	return {
		tenant: tenant.id,
		metric,
		interval: "hour",
		from: iso(H12),
		to: iso(H14 + HOUR),
		event: null,
		breakdown: null,
		...rest,
	};
}

describe("GET /v1/query/timeseries", () => {
	it("answers exact counts, errors (status ≥ 500) and error rates per hour, null where a window has no events", async () => {
		const tenant = await createTenant();
		await feed(tenant, requests());
		const starts = [H12, H13, H14];
		const one = (values: (number | null)[]) => [{ key: {}, points: points(starts, H14 + HOUR, values) }];

		expect(await timeseries(tenant, `metric=count&interval=hour&${RANGE}`)).toEqual(
			answer(tenant, "count", { series: one([6, 2, 0]) }),
		);
		expect(await timeseries(tenant, `metric=errors&interval=hour&${RANGE}`)).toEqual(
			answer(tenant, "errors", { series: one([3, 0, 0]) }),
		);
		expect(await timeseries(tenant, `metric=error_rate&interval=hour&${RANGE}`)).toEqual(
			answer(tenant, "error_rate", { series: one([0.5, 0, null]) }),
		);
		expect(await timeseries(tenant, `metric=error_rate&interval=hour&${RANGE}&event=api_call`)).toEqual(
			answer(tenant, "error_rate", { event: "api_call", series: one([0.6, 0, null]) }),
		);
		expect(await timeseries(tenant, `metric=count&interval=hour&${RANGE}&event=page_view`)).toEqual(
			answer(tenant, "count", { event: "page_view", series: one([1, 1, 0]) }),
		);
		// An event nobody sent: the one series, empty.
		expect(await timeseries(tenant, `metric=error_rate&interval=hour&${RANGE}&event=signup`)).toEqual(
			answer(tenant, "error_rate", { event: "signup", series: one([null, null, null]) }),
		);
		// Minutes: 12:05 holds two requests, one of them an error.
		const minutes = await timeseries(tenant, `metric=errors&interval=minute&from=${iso(H12)}&to=${iso(H12 + 6 * MINUTE)}`);
		expect(minutes.series).toEqual([
			{
				key: {},
				points: points(
					[0, 1, 2, 3, 4, 5].map((m) => H12 + m * MINUTE),
					H12 + 6 * MINUTE,
					[0, 0, 0, 0, 0, 1],
				),
			},
		]);
	});

	describe("breakdowns", () => {
		const traffic = () => [
			queued({ timestamp: H12 + MINUTE, userId: "u1", route: "/v1/items/:id", country: "DE", performance: { statusCode: 200 } }),
			queued({ timestamp: H12 + 2 * MINUTE, userId: "u2", route: "/v1/items/:id", country: "US", performance: { statusCode: 503 } }),
			queued({ timestamp: H12 + 3 * MINUTE, route: "/v1/users", performance: { statusCode: 200 } }),
			queued({ timestamp: H13 + 4 * MINUTE, userId: "u1", route: "/v1/items/:id", country: "DE", performance: { statusCode: 503 } }),
			queued({ event: "page_view", timestamp: H12 + 5 * MINUTE, userId: "u1" }),
			queued({ event: "page_view", timestamp: H13 + 5 * MINUTE, country: "US" }),
			queued({ event: "signup", timestamp: H13 + 6 * MINUTE, route: "/v1/users", country: "DE", performance: { statusCode: 201 } }),
		];

		it("spells out a series per route, null for events without one, summed across events", async () => {
			const tenant = await createTenant();
			await feed(tenant, traffic());
			const end = H14 + HOUR;
			expect((await timeseries(tenant, `metric=count&interval=hour&${RANGE}&breakdown=route`)).series).toEqual([
				{ key: { route: null }, points: points([H12, H13, H14], end, [1, 1, 0]) },
				{ key: { route: "/v1/items/:id" }, points: points([H12, H13, H14], end, [2, 1, 0]) },
				{ key: { route: "/v1/users" }, points: points([H12, H13, H14], end, [1, 1, 0]) },
			]);
			expect((await timeseries(tenant, `metric=error_rate&interval=hour&${RANGE}&breakdown=status`)).series).toEqual([
				{ key: { status: null }, points: points([H12, H13, H14], end, [0, 0, null]) },
				{ key: { status: "200" }, points: points([H12, H13, H14], end, [0, null, null]) },
				{ key: { status: "201" }, points: points([H12, H13, H14], end, [null, 0, null]) },
				{ key: { status: "503" }, points: points([H12, H13, H14], end, [1, 1, null]) },
			]);
		});

		it.each([
			["event", undefined],
			["route", undefined],
			["status", undefined],
			["country", undefined],
			["route", "api_call"],
			["country", "page_view"],
			["event", "signup"],
		] as const)("answers exact counts, errors and users per %s (event %s) per hour and per day", async (breakdown, event) => {
			const tenant = await createTenant();
			await feed(tenant, traffic());
			const filter = event === undefined ? "" : `&event=${event}`;
			for (const metric of ["count", "errors", "error_rate", "unique_users"] as const) {
				const hourly = await timeseries(tenant, `metric=${metric}&interval=hour&${RANGE}&breakdown=${breakdown}${filter}`);
				expect(hourly).toEqual(
					answer(tenant, metric, {
						event: event ?? null,
						breakdown,
						series: expectedSeries(traffic(), windowsOver(H12, H14 + HOUR, "hour"), metric, breakdown, event),
					}),
				);
				const daily = await timeseries(
					tenant,
					`metric=${metric}&interval=day&from=2100-03-19&to=2100-03-21&breakdown=${breakdown}${filter}`,
				);
				expect(daily.series).toEqual(
					expectedSeries(traffic(), windowsOver(Date.UTC(2100, 2, 19), Date.UTC(2100, 2, 21), "day"), metric, breakdown, event),
				);
			}
		});

		it("answers no series for a breakdown without data, and the one empty series without a breakdown", async () => {
			const tenant = await createTenant();
			const empty = await timeseries(tenant, `metric=count&interval=hour&${RANGE}&breakdown=country`);
			expect(empty).toEqual(answer(tenant, "count", { breakdown: "country", series: [] }));
			for (const [metric, value] of [
				["count", 0],
				["errors", 0],
				["unique_users", 0],
				["error_rate", null],
				["duration_p50", null],
				["duration_p95", null],
				["duration_p99", null],
			] as const) {
				expect(await timeseries(tenant, `metric=${metric}&interval=hour&${RANGE}`)).toEqual(
					answer(tenant, metric, { series: [{ key: {}, points: points([H12, H13, H14], H14 + HOUR, [value, value, value]) }] }),
				);
			}
		});
	});

	describe("windows", () => {
		// The last millisecond of 19 March and the first of 20 March, a minute either side.
		const MIDNIGHT = Date.UTC(2100, 2, 20);
		const edges = () => [
			queued({ timestamp: MIDNIGHT - MINUTE }),
			queued({ timestamp: MIDNIGHT - 1, performance: { statusCode: 500 } }),
			queued({ timestamp: MIDNIGHT }),
			queued({ timestamp: MIDNIGHT + MINUTE - 1 }),
			queued({ timestamp: MIDNIGHT + MINUTE }),
		];

		it.each([
			["minute", MIDNIGHT - 2 * MINUTE, MIDNIGHT + 2 * MINUTE, [0, 2, 2, 1]],
			["hour", MIDNIGHT - HOUR, MIDNIGHT + HOUR, [2, 3]],
			["day", MIDNIGHT - 24 * HOUR, MIDNIGHT + 24 * HOUR, [2, 3]],
		] as const)("puts each event in its %s across the day boundary", async (interval, from, to, counts) => {
			const tenant = await createTenant();
			await feed(tenant, edges());
			const { starts, end } = windowsOver(from, to, interval);
			expect(starts.length).toBe(counts.length);
			expect(await timeseries(tenant, `metric=count&interval=${interval}&from=${iso(from)}&to=${iso(to)}`)).toEqual(
				answer(tenant, "count", {
					interval,
					from: iso(from),
					to: iso(to),
					series: [{ key: {}, points: points(starts, end, [...counts]) }],
				}),
			);
		});

		it.each([
			[
				"hour",
				"2100-03-19T23:34:56.789Z",
				"2100-03-20T00:00:00.001Z",
				"2100-03-19T23:00:00.000Z",
				"2100-03-20T01:00:00.000Z",
				[2, 3],
			],
			["minute", "2100-03-19T23:59:59.999Z", "2100-03-20T00:00:30Z", "2100-03-19T23:59:00.000Z", "2100-03-20T00:01:00.000Z", [2, 2]],
			[
				"day",
				"2100-03-19T12:00:00+02:00",
				"2100-03-20T00:00:00.001Z",
				"2100-03-19T00:00:00.000Z",
				"2100-03-21T00:00:00.000Z",
				[2, 3],
			],
			["week", "2100-03-16", "2100-03-20T01:00Z", "2100-03-15T00:00:00.000Z", "2100-03-22T00:00:00.000Z", [5]],
			["month", "2100-03-19T23:59Z", "2100-03-20", "2100-03-01T00:00:00.000Z", "2100-04-01T00:00:00.000Z", [5]],
		] as const)("rounds from and to out to whole %s windows", async (interval, from, to, roundedFrom, roundedTo, counts) => {
			const tenant = await createTenant();
			await feed(tenant, edges());
			const { starts, end } = windowsOver(Date.parse(roundedFrom), Date.parse(roundedTo), interval);
			expect(iso(end)).toBe(roundedTo);
			expect(
				await timeseries(tenant, `metric=count&interval=${interval}&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`),
			).toEqual(
				answer(tenant, "count", {
					interval,
					from: roundedFrom,
					to: roundedTo,
					series: [{ key: {}, points: points(starts, end, [...counts]) }],
				}),
			);
		});

		it("covers the current UTC day by the hour when from, to and interval are left out", async () => {
			const tenant = await createTenant();
			await feed(tenant, edges());
			const { starts, end } = windowsOver(MIDNIGHT, MIDNIGHT + 24 * HOUR, "hour");
			expect(await timeseries(tenant, "metric=count")).toEqual(
				answer(tenant, "count", {
					from: iso(MIDNIGHT),
					to: iso(end),
					series: [{ key: {}, points: points(starts, end, [3, ...Array<number>(23).fill(0)]) }],
				}),
			);
		});
	});
});
