// GET /v1/query/timeseries by week (from Monday 00:00 UTC) and by month (from the 1st), built from
// D1's day rows and the aggregator's pending minutes; the hours and days of flushed events older
// than the 7 days D1 keeps their minutes for.
import { describe, expect, it } from "vitest";
import { createTenant, freezeClockAt, useFrozenClock } from "../helpers";
import { feed, flush, iso, queued } from "./query-helpers";
import { expectedSeries, timeseries, windowsOver, type Interval } from "./series-helpers";

// Saturday 20 March 2100, 15:00 UTC. 1 March 2100 is a Monday, and so is 1 February.
const NOW = Date.UTC(2100, 2, 20, 15);
useFrozenClock(() => freezeClockAt(NOW));

const at = (month: number, day: number, hour = 0, minute = 0, ms = 0) => Date.UTC(2100, month - 1, day, hour, minute, 0, ms);

/** Events either side of week and month boundaries; the first set is flushed, the second stays pending. */
const flushed = () => [
	queued({ timestamp: at(2, 10, 10), userId: "u1", performance: { statusCode: 500 } }),
	queued({ timestamp: at(2, 21, 23, 59, 59_999), userId: "u2" }),
	queued({ timestamp: at(2, 22), userId: "u2", route: "/a" }),
	queued({ event: "page_view", timestamp: at(2, 28, 23, 59, 59_999), userId: "u3" }),
	queued({ timestamp: at(3, 1), userId: "u3", route: "/a", performance: { statusCode: 503 } }),
	queued({ timestamp: at(3, 14, 23, 59, 59_999), userId: "u1" }),
];
const pending = () => [
	queued({ timestamp: at(2, 22, 0, 1), userId: "u4", route: "/b", performance: { statusCode: 200 } }),
	queued({ event: "page_view", timestamp: at(3, 1, 0, 0, 1), userId: "u3" }),
	queued({ timestamp: at(3, 15), userId: "u1", performance: { statusCode: 500 } }),
	queued({ timestamp: at(3, 20, 14, 59), userId: "u5", route: "/a" }),
];

describe("GET /v1/query/timeseries by week and month", () => {
	it("starts weeks on Monday and months on the 1st", () => {
		const weeks = windowsOver(Date.parse("2100-02-10"), Date.parse("2100-03-20T15:00Z"), "week");
		expect(weeks.starts.map(iso)).toEqual([
			"2100-02-08T00:00:00.000Z",
			"2100-02-15T00:00:00.000Z",
			"2100-02-22T00:00:00.000Z",
			"2100-03-01T00:00:00.000Z",
			"2100-03-08T00:00:00.000Z",
			"2100-03-15T00:00:00.000Z",
		]);
		expect(iso(weeks.end)).toBe("2100-03-22T00:00:00.000Z");
		const months = windowsOver(Date.parse("2100-02-10"), Date.parse("2100-03-20"), "month");
		expect([...months.starts, months.end].map(iso)).toEqual([
			"2100-02-01T00:00:00.000Z",
			"2100-03-01T00:00:00.000Z",
			"2100-04-01T00:00:00.000Z",
		]);
	});

	it("answers exact weekly and monthly series from D1's days and the pending minutes together", async () => {
		const tenant = await createTenant();
		await feed(tenant, flushed());
		expect(await flush(tenant)).toBeGreaterThan(0);
		await feed(tenant, pending());
		const events = [...flushed(), ...pending()];
		const from = "2100-02-10T00:00:00.000Z";
		const to = "2100-03-20T15:00:00.000Z";

		expect((await timeseries(tenant, `metric=count&interval=week&from=${from}&to=${to}`)).series).toEqual([
			{
				key: {},
				points: [
					{ start: "2100-02-08T00:00:00.000Z", end: "2100-02-15T00:00:00.000Z", value: 1 },
					{ start: "2100-02-15T00:00:00.000Z", end: "2100-02-22T00:00:00.000Z", value: 1 },
					{ start: "2100-02-22T00:00:00.000Z", end: "2100-03-01T00:00:00.000Z", value: 3 },
					{ start: "2100-03-01T00:00:00.000Z", end: "2100-03-08T00:00:00.000Z", value: 2 },
					{ start: "2100-03-08T00:00:00.000Z", end: "2100-03-15T00:00:00.000Z", value: 1 },
					{ start: "2100-03-15T00:00:00.000Z", end: "2100-03-22T00:00:00.000Z", value: 2 },
				],
			},
		]);
		expect((await timeseries(tenant, `metric=count&interval=month&from=${from}&to=${to}`)).series).toEqual([
			{
				key: {},
				points: [
					{ start: "2100-02-01T00:00:00.000Z", end: "2100-03-01T00:00:00.000Z", value: 5 },
					{ start: "2100-03-01T00:00:00.000Z", end: "2100-04-01T00:00:00.000Z", value: 5 },
				],
			},
		]);

		for (const interval of ["week", "month"] as const) {
			const windows = windowsOver(Date.parse(from), Date.parse(to), interval);
			for (const metric of ["count", "errors", "error_rate", "unique_users"] as const) {
				for (const breakdown of [undefined, "event", "route", "status"] as const) {
					const by = breakdown === undefined ? "" : `&breakdown=${breakdown}`;
					const answer = await timeseries(tenant, `metric=${metric}&interval=${interval}&from=${from}&to=${to}${by}`);
					expect(answer).toEqual({
						tenant: tenant.id,
						metric,
						interval,
						from: iso(windows.starts[0]!),
						to: iso(windows.end),
						event: null,
						breakdown: breakdown ?? null,
						series: expectedSeries(events, windows, metric, breakdown),
					});
				}
			}
			const apiCalls = await timeseries(tenant, `metric=unique_users&interval=${interval}&from=${from}&to=${to}&event=api_call`);
			expect(apiCalls.series).toEqual(expectedSeries(events, windows, "unique_users", undefined, "api_call"));
		}
	});

	it.each([
		["hour", "2100-02-21T22:00Z", "2100-02-22T02:00Z"],
		["day", "2100-02-01", "2100-03-21"],
		["week", "2100-02-01", "2100-03-21"],
		["month", "2100-01-01", "2100-05-01"],
	] as const)("keeps the %s series of events older than D1's 7 days of minutes after their flush", async (interval, from, to) => {
		const tenant = await createTenant();
		await feed(tenant, flushed());
		const windows = windowsOver(Date.parse(from), Date.parse(to), interval as Interval);
		const query = `metric=count&interval=${interval}&from=${from}&to=${to}&breakdown=route`;
		const expected = expectedSeries(flushed(), windows, "count", "route");
		expect((await timeseries(tenant, query)).series).toEqual(expected);
		expect(await flush(tenant)).toBeGreaterThan(0);
		expect((await timeseries(tenant, query)).series).toEqual(expected);
	});
});
