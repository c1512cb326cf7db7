// GET /v1/query/timeseries refusals: every 400 naming its field (metric, interval, breakdown, event,
// from, to, too many windows, too many points), the read key it needs, and tenant isolation.
import { describe, expect, it } from "vitest";
import { createTenant, freezeClockAt, useFrozenClock } from "../helpers";
import { DAY, feed, flush, HOUR, invalid, iso, MINUTE, queued, statusAndBody } from "./query-helpers";
import { points, timeseries } from "./series-helpers";

// On a whole minute, so "7 days ago" is a window start.
const NOW = Date.UTC(2100, 2, 20, 15);
useFrozenClock(() => freezeClockAt(NOW));

const METRICS = "count, errors, error_rate, duration_p50, duration_p95, duration_p99, unique_users";
const PATH = "/v1/query/timeseries";

describe("GET /v1/query/timeseries: 400s", () => {
	const WEEK_AGO = NOW - 7 * DAY;
	it.each([
		["", "metric", `is required: one of ${METRICS}`],
		["interval=hour", "metric", `is required: one of ${METRICS}`],
		["metric=", "metric", `must be one of ${METRICS}`],
		["metric=p50", "metric", `must be one of ${METRICS}`],
		["metric=COUNT", "metric", `must be one of ${METRICS}`],
		["metric=count&interval=second", "interval", "must be one of minute, hour, day, week, month"],
		["metric=count&interval=", "interval", "must be one of minute, hour, day, week, month"],
		["metric=count&breakdown=user", "breakdown", "must be one of event, route, status, country"],
		["metric=count&breakdown=", "breakdown", "must be one of event, route, status, country"],
		["metric=count&event=", "event", "must be 1-200 characters"],
		[`metric=count&event=${"e".repeat(201)}`, "event", "must be 1-200 characters"],
		["metric=count&from=yesterday", "from", "must be an ISO 8601 date or date-time"],
		["metric=count&to=2100-13-01", "to", "must be an ISO 8601 date or date-time"],
		["metric=count&from=2100-03-20T10:00Z&to=2100-03-20T10:00Z", "to", "must be after from"],
		["metric=count&from=2100-03-20T10:00Z&to=2100-03-20T09:00Z", "to", "must be after from"],
		[
			`metric=count&interval=minute&from=${iso(WEEK_AGO - 1)}&to=${iso(WEEK_AGO + HOUR)}`,
			"from",
			"minute intervals cover the last 7 days; older series are kept per hour",
		],
		[
			`metric=count&interval=minute&from=${iso(NOW - 10_001 * MINUTE)}&to=${iso(NOW)}`,
			"interval",
			"the range holds more than 10000 minute windows; narrow it or use a larger window",
		],
		[
			"metric=count&interval=hour&from=2099-01-01T00:00Z&to=2100-02-21T17:00Z",
			"interval",
			"the range holds more than 10000 hour windows; narrow it or use a larger window",
		],
		[
			"metric=count&interval=day&from=2000-01-01&to=2100-01-01",
			"interval",
			"the range holds more than 10000 day windows; narrow it or use a larger window",
		],
		["metric=count&metric=errors", "metric", "given more than once"],
		["metric=count&granularity=hour", "granularity", "unknown query parameter"],
		["metric=count&tenant=someone-else", "tenant", "unknown query parameter"],
	])("answers 400 for %s, naming %s", async (query, field, message) => {
		const tenant = await createTenant();
		expect(await statusAndBody(`${PATH}?${query}`, tenant.readKey)).toEqual(invalid(field, message));
	});

	it("accepts exactly 10,000 windows and minutes from exactly 7 days ago", async () => {
		const tenant = await createTenant();
		for (const query of [
			`interval=minute&from=${iso(NOW - 10_000 * MINUTE)}&to=${iso(NOW)}`,
			`interval=minute&from=${iso(WEEK_AGO)}&to=${iso(WEEK_AGO + MINUTE)}`,
			"interval=hour&from=2099-01-01T00:00Z&to=2100-02-21T16:00Z",
			"interval=month&from=1300-01-01&to=2100-01-01",
		]) {
			const answer = await timeseries(tenant, `metric=count&${query}`);
			expect(answer.series).toHaveLength(1);
		}
		const week = await timeseries(tenant, `metric=count&interval=minute&from=${iso(WEEK_AGO)}&to=${iso(WEEK_AGO + MINUTE)}`);
		expect(week.series).toEqual([{ key: {}, points: points([WEEK_AGO], WEEK_AGO + MINUTE, [0]) }]);
	});

	it("answers 400 naming breakdown past 10,000 points (windows × series), and exactly 10,000", async () => {
		const tenant = await createTenant();
		// 100 routes of api_call and one of signup, in the last of 100 hours.
		const last = NOW - 30 * MINUTE;
		await feed(tenant, [
			...Array.from({ length: 100 }, (_, i) => queued({ timestamp: last, route: `/r/${i}` })),
			queued({ event: "signup", timestamp: last, route: "/signup" }),
		]);
		const range = `interval=hour&from=${iso(NOW - 100 * HOUR)}&to=${iso(NOW)}`;
		const tooMany = invalid(
			"breakdown",
			"the answer would hold 10100 points, more than 10000; narrow the range, use a larger interval or filter by event",
		);
		expect(await statusAndBody(`${PATH}?metric=count&${range}&breakdown=route`, tenant.readKey)).toEqual(tooMany);
		const apiCalls = await timeseries(tenant, `metric=count&${range}&breakdown=route&event=api_call`);
		expect(apiCalls.series).toHaveLength(100);
		expect(apiCalls.series.reduce((n, s) => n + s.points.length, 0)).toBe(10_000);
		expect(apiCalls.series.map((s) => s.points.at(-1)!.value)).toEqual(Array<number>(100).fill(1));
		// Flushed, the same.
		await flush(tenant);
		expect(await statusAndBody(`${PATH}?metric=count&${range}&breakdown=route`, tenant.readKey)).toEqual(tooMany);
		expect((await timeseries(tenant, `metric=count&${range}&breakdown=route&event=api_call`)).series).toEqual(apiCalls.series);
	});
});

describe("GET /v1/query/timeseries: keys and tenants", () => {
	it("needs a read key: 403 with a write key, 401 without one or with an unknown one", async () => {
		const tenant = await createTenant();
		expect(await statusAndBody(`${PATH}?metric=count`, tenant.writeKey)).toEqual({
			status: 403,
			body: { error: { code: "forbidden", message: "A write key cannot use this route" } },
		});
		expect(await statusAndBody(`${PATH}?metric=count`)).toEqual({
			status: 401,
			body: { error: { code: "unauthorized", message: "Missing bearer key" } },
		});
		expect(await statusAndBody(`${PATH}?metric=count`, `${tenant.readKey}x`)).toEqual({
			status: 401,
			body: { error: { code: "unauthorized", message: "Unknown or revoked key" } },
		});
	});

	it("answers each tenant its own series only, pending and flushed", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		const hour = NOW - HOUR;
		await feed(a, [queued({ timestamp: hour, userId: "u1" }), queued({ timestamp: hour + 1, userId: "u2", route: "/x" })]);
		await feed(b, [queued({ timestamp: hour, userId: "u1", route: "/y", performance: { statusCode: 500 } })]);
		const query = (metric: string, rest = "") => `metric=${metric}&interval=hour&from=${iso(hour)}&to=${iso(NOW)}${rest}`;
		const expectOwn = async () => {
			expect((await timeseries(a, query("count"))).tenant).toBe(a.id);
			expect((await timeseries(a, query("count"))).series).toEqual([{ key: {}, points: points([hour], NOW, [2]) }]);
			expect((await timeseries(b, query("count"))).series).toEqual([{ key: {}, points: points([hour], NOW, [1]) }]);
			expect((await timeseries(a, query("errors"))).series).toEqual([{ key: {}, points: points([hour], NOW, [0]) }]);
			expect((await timeseries(b, query("unique_users"))).series).toEqual([{ key: {}, points: points([hour], NOW, [1]) }]);
			expect((await timeseries(a, query("count", "&breakdown=route"))).series).toEqual([
				{ key: { route: null }, points: points([hour], NOW, [1]) },
				{ key: { route: "/x" }, points: points([hour], NOW, [1]) },
			]);
			expect((await timeseries(b, query("count", "&breakdown=route"))).series).toEqual([
				{ key: { route: "/y" }, points: points([hour], NOW, [1]) },
			]);
			// A tenant nothing was sent for answers zeros.
			expect((await timeseries(c, query("count"))).series).toEqual([{ key: {}, points: points([hour], NOW, [0]) }]);
		};
		const c = await createTenant();
		await expectOwn();
		await flush(a);
		await expectOwn();
		await flush(b);
		await expectOwn();
	});
});
