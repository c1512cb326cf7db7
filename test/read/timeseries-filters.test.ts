// GET /v1/query/timeseries narrowed to one route, status or country (none: the events without
// one), alone or broken down by event, and the 400s for combinations the series cannot answer.
import { describe, expect, it } from "vitest";
import { createTenant, freezeClockAt, useFrozenClock } from "../helpers";
import { feed, HOUR, invalid, iso, MINUTE, queued, statusAndBody } from "./query-helpers";
import { points, timeseries } from "./series-helpers";

const NOW = Date.UTC(2100, 2, 20, 15);
useFrozenClock(() => freezeClockAt(NOW));

const H12 = Date.UTC(2100, 2, 20, 12);
const RANGE = `interval=hour&from=${iso(H12)}&to=${iso(H12 + HOUR)}`;

const events = () => [
	queued({ timestamp: H12 + MINUTE, route: "/a", country: "DE", performance: { statusCode: 200, duration: 10 } }),
	queued({ timestamp: H12 + 2 * MINUTE, route: "/a", country: "FR", performance: { statusCode: 503, duration: 30 } }),
	queued({ event: "checkout", timestamp: H12 + 3 * MINUTE, route: "/a", country: "DE", performance: { statusCode: 200 } }),
	queued({ timestamp: H12 + 4 * MINUTE, route: "/b", country: "DE", performance: { statusCode: 404 } }),
	queued({ event: "page_view", timestamp: H12 + 5 * MINUTE }),
];

const one = (value: number | null) => points([H12], H12 + HOUR, [value]);

describe("timeseries filters", () => {
	it("narrows every metric to one route, status or country, and none to the events without one", async () => {
		const tenant = await createTenant();
		await feed(tenant, events());
		const cases: [string, string, number | null, Record<string, string | null>][] = [
			["route=/a", "count", 3, { route: "/a" }],
			["route=/a", "errors", 1, { route: "/a" }],
			["route=/a", "error_rate", 1 / 3, { route: "/a" }],
			["route=/b", "count", 1, { route: "/b" }],
			["route=none", "count", 1, { route: null }],
			["status=200", "count", 2, { status: "200" }],
			["status=503", "error_rate", 1, { status: "503" }],
			["country=DE", "count", 3, { country: "DE" }],
			["country=FR", "count", 1, { country: "FR" }],
			["country=none", "count", 1, { country: null }],
		];
		for (const [filter, metric, value, echo] of cases) {
			expect(await timeseries(tenant, `metric=${metric}&${RANGE}&${filter}`), `${filter} ${metric}`).toEqual({
				tenant: tenant.id,
				metric,
				interval: "hour",
				from: iso(H12),
				to: iso(H12 + HOUR),
				event: null,
				...echo,
				breakdown: null,
				series: [{ key: {}, points: one(value) }],
			});
		}
	});

	it("breaks a filtered query down by event, and combines it with an event", async () => {
		const tenant = await createTenant();
		await feed(tenant, events());
		const byEvent = await timeseries(tenant, `metric=count&${RANGE}&country=DE&breakdown=event`);
		expect(byEvent.series).toEqual([
			{ key: { event: "api_call" }, points: one(2) },
			{ key: { event: "checkout" }, points: one(1) },
		]);
		const checkout = await timeseries(tenant, `metric=count&${RANGE}&route=/a&event=checkout`);
		expect(checkout.series).toEqual([{ key: {}, points: one(1) }]);
	});

	it.each([
		["route=/a&country=DE", "country", "cannot be combined with route: filter by one of route, status, country"],
		["route=/a&breakdown=country", "breakdown", "must be event or absent with a route filter"],
		["status=2000", "status", "must be 1-3 characters, or none"],
		["country=", "country", "must be 1-2 characters, or none"],
	])("answers 400 for %s, naming %s", async (query, path, message) => {
		const tenant = await createTenant();
		expect(await statusAndBody(`/v1/query/timeseries?metric=count&${RANGE}&${query}`, tenant.readKey)).toEqual(invalid(path, message));
	});
});
