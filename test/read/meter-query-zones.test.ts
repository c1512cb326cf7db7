// Meter query windows in time zones, with every boundary written out: Kolkata's days and months
// start at 18:30 UTC; New York's fall-back day lasts 25 hours and its spring-forward day 23; a
// zone that skips midnight (Santiago) starts that day at its first instant. Events sit on the last
// and first millisecond of windows; every answer is asserted whole.
import { describe, expect, it } from "vitest";
import { createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import { createMeter, ingestDirect, queryMeter, type QueryAnswer, type WireEvent } from "./meter-helpers";

let next = 0;
/** A "job" event at an ISO instant, costing `cost`. */
const job = (at: string, cost = 1): WireEvent => ({ id: `z-${next++}`, event: "job", timestamp: Date.parse(at), properties: { cost } });

async function tenantWith(events: WireEvent[]): Promise<TestTenant> {
	const tenant = await createTenant();
	await createMeter(tenant, { slug: "jobs", eventType: "job", aggregation: "COUNT" });
	await createMeter(tenant, { slug: "cost", eventType: "job", aggregation: "SUM", valueProperty: "cost" });
	expect(await ingestDirect(tenant, events)).toBe(events.length);
	return tenant;
}

/** The answer of the "jobs" COUNT meter, or the "cost" SUM meter, over explicit windows. */
function answer(
	slug: "jobs" | "cost",
	zone: string,
	windowSize: string,
	range: [string, string],
	points: [start: string, end: string, value: string][],
): QueryAnswer {
	return {
		meter: slug,
		aggregation: slug === "jobs" ? "COUNT" : "SUM",
		from: range[0],
		to: range[1],
		windowSize,
		windowTimeZone: zone,
		data: points.map(([windowStart, windowEnd, value]) => ({
			windowStart,
			windowEnd,
			value: Number(value),
			valueDecimal: value,
			customerId: null,
			groupBy: {},
		})),
	};
}

const query = (tenant: TestTenant, slug: "jobs" | "cost", windowSize: string, windowTimeZone: string, from: string, to: string) =>
	queryMeter(tenant, slug, { from: Date.parse(from), to: Date.parse(to), windowSize: windowSize as "DAY", windowTimeZone });

describe("windows in Asia/Kolkata (+05:30) and across New York's fall-back", () => {
	// In 2100, so no alarm fires by itself; the events lie within the 35 days the edge accepts.
	useFrozenClock(() => freezeClockAt(Date.UTC(2100, 11, 1, 12)));

	it("starts Kolkata's days and months at 18:30 UTC", async () => {
		const tenant = await tenantWith([
			job("2100-10-31T18:29:59.999Z", 0.5),
			job("2100-10-31T18:30:00.000Z", 0.25),
			job("2100-11-04T18:29:59.999Z", 1.125),
			job("2100-11-04T18:30:00.000Z", 2),
			job("2100-11-05T18:29:00.000Z", 3.000001),
			job("2100-11-05T18:30:00.000Z", 4),
			job("2100-11-30T18:29:59.999Z", 5),
			job("2100-11-30T18:30:00.000Z", 6),
		]);
		const zone = "Asia/Kolkata";
		// From a window's first instant: the first window starts there.
		expect(await query(tenant, "cost", "DAY", zone, "2100-11-04T18:30:00Z", "2100-11-06T18:30:00Z")).toEqual(
			answer(
				"cost",
				zone,
				"DAY",
				["2100-11-04T18:30:00.000Z", "2100-11-06T18:30:00.000Z"],
				[
					["2100-11-04T18:30:00.000Z", "2100-11-05T18:30:00.000Z", "5.000001"],
					["2100-11-05T18:30:00.000Z", "2100-11-06T18:30:00.000Z", "4"],
				],
			),
		);
		// From midnight UTC: the windows still follow Kolkata's midnights, the first one holding `from`.
		expect(await query(tenant, "jobs", "DAY", zone, "2100-11-05T00:00:00Z", "2100-11-06T00:00:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"DAY",
				["2100-11-04T18:30:00.000Z", "2100-11-06T18:30:00.000Z"],
				[
					["2100-11-04T18:30:00.000Z", "2100-11-05T18:30:00.000Z", "2"],
					["2100-11-05T18:30:00.000Z", "2100-11-06T18:30:00.000Z", "1"],
				],
			),
		);
		expect(await query(tenant, "jobs", "MONTH", zone, "2100-10-01T00:00:00Z", "2100-12-01T00:00:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"MONTH",
				["2100-09-30T18:30:00.000Z", "2100-12-31T18:30:00.000Z"],
				[
					["2100-09-30T18:30:00.000Z", "2100-10-31T18:30:00.000Z", "1"],
					["2100-10-31T18:30:00.000Z", "2100-11-30T18:30:00.000Z", "6"],
					["2100-11-30T18:30:00.000Z", "2100-12-31T18:30:00.000Z", "1"],
				],
			),
		);
		// Hours in Kolkata start at half past the UTC hour.
		expect(await query(tenant, "jobs", "HOUR", zone, "2100-11-04T18:00:00Z", "2100-11-04T19:00:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"HOUR",
				["2100-11-04T17:30:00.000Z", "2100-11-04T19:30:00.000Z"],
				[
					["2100-11-04T17:30:00.000Z", "2100-11-04T18:30:00.000Z", "1"],
					["2100-11-04T18:30:00.000Z", "2100-11-04T19:30:00.000Z", "1"],
				],
			),
		);
	});

	it("makes New York's 7 November 2100 a 25-hour day, and its months end at local midnight", async () => {
		const tenant = await tenantWith([
			job("2100-10-31T12:00:00.000Z"),
			job("2100-11-01T03:59:59.999Z"),
			job("2100-11-01T04:00:00.000Z"),
			job("2100-11-07T03:59:59.999Z"),
			job("2100-11-07T04:00:00.000Z"),
			// 01:30 twice: daylight time, then standard time an hour later.
			job("2100-11-07T05:30:00.000Z"),
			job("2100-11-07T06:30:00.000Z"),
			job("2100-11-08T04:59:59.999Z"),
			job("2100-11-08T05:00:00.000Z"),
			job("2100-12-01T04:59:59.999Z"),
			job("2100-12-01T05:00:00.000Z"),
		]);
		const zone = "America/New_York";
		expect(await query(tenant, "jobs", "DAY", zone, "2100-11-06T04:00:00Z", "2100-11-09T05:00:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"DAY",
				["2100-11-06T04:00:00.000Z", "2100-11-09T05:00:00.000Z"],
				[
					["2100-11-06T04:00:00.000Z", "2100-11-07T04:00:00.000Z", "1"],
					["2100-11-07T04:00:00.000Z", "2100-11-08T05:00:00.000Z", "4"],
					["2100-11-08T05:00:00.000Z", "2100-11-09T05:00:00.000Z", "1"],
				],
			),
		);
		expect(await query(tenant, "jobs", "MONTH", zone, "2100-10-01T04:00:00Z", "2100-12-01T05:00:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"MONTH",
				["2100-10-01T04:00:00.000Z", "2100-12-01T05:00:00.000Z"],
				[
					["2100-10-01T04:00:00.000Z", "2100-11-01T04:00:00.000Z", "2"],
					["2100-11-01T04:00:00.000Z", "2100-12-01T05:00:00.000Z", "8"],
				],
			),
		);
		// The same events by UTC day: the zone changes the windows, not the events.
		expect(await query(tenant, "jobs", "DAY", "UTC", "2100-11-07T00:00:00Z", "2100-11-08T00:00:00Z")).toEqual(
			answer(
				"jobs",
				"UTC",
				"DAY",
				["2100-11-07T00:00:00.000Z", "2100-11-08T00:00:00.000Z"],
				[["2100-11-07T00:00:00.000Z", "2100-11-08T00:00:00.000Z", "4"]],
			),
		);
	});
});

describe("windows starting in New York's repeated hour", () => {
	useFrozenClock(() => freezeClockAt(Date.UTC(2100, 11, 1, 12)));

	// 01:30 daylight time (05:30 UTC), then 01:30:30 and 01:45 standard time (06:30:30 and 06:45 UTC).
	const repeated = () => tenantWith([job("2100-11-07T05:30:00.000Z"), job("2100-11-07T06:30:30.000Z"), job("2100-11-07T06:45:00.000Z")]);
	const zone = "America/New_York";

	it("starts HOUR windows at the hour holding `from`, not at the earlier hour that shows the same wall time", async () => {
		const tenant = await repeated();
		expect(await query(tenant, "jobs", "HOUR", zone, "2100-11-07T06:30:00Z", "2100-11-07T07:00:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"HOUR",
				["2100-11-07T06:00:00.000Z", "2100-11-07T07:00:00.000Z"],
				[["2100-11-07T06:00:00.000Z", "2100-11-07T07:00:00.000Z", "2"]],
			),
		);
	});

	it("starts MINUTE windows at the minute holding `from`", async () => {
		const tenant = await repeated();
		expect(await query(tenant, "jobs", "MINUTE", zone, "2100-11-07T06:30:00Z", "2100-11-07T06:32:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"MINUTE",
				["2100-11-07T06:30:00.000Z", "2100-11-07T06:32:00.000Z"],
				[["2100-11-07T06:30:00.000Z", "2100-11-07T06:31:00.000Z", "1"]],
			),
		);
	});
});

describe("windows across New York's spring-forward", () => {
	useFrozenClock(() => freezeClockAt(Date.UTC(2100, 2, 16, 12)));

	it("makes 14 March 2100 a 23-hour day", async () => {
		const tenant = await tenantWith([
			job("2100-03-01T04:59:59.999Z", 0.1),
			job("2100-03-01T05:00:00.000Z", 0.2),
			job("2100-03-14T04:59:59.999Z", 0.3),
			job("2100-03-14T05:00:00.000Z", 0.4),
			// 01:59 standard time, and the next minute that exists: 03:00 daylight time.
			job("2100-03-14T06:59:00.000Z", 0.5),
			job("2100-03-14T07:00:00.000Z", 0.6),
			job("2100-03-15T03:59:59.999Z", 0.7),
			job("2100-03-15T04:00:00.000Z", 0.8),
		]);
		const zone = "America/New_York";
		expect(await query(tenant, "cost", "DAY", zone, "2100-03-13T05:00:00Z", "2100-03-16T04:00:00Z")).toEqual(
			answer(
				"cost",
				zone,
				"DAY",
				["2100-03-13T05:00:00.000Z", "2100-03-16T04:00:00.000Z"],
				[
					["2100-03-13T05:00:00.000Z", "2100-03-14T05:00:00.000Z", "0.3"],
					["2100-03-14T05:00:00.000Z", "2100-03-15T04:00:00.000Z", "2.2"],
					["2100-03-15T04:00:00.000Z", "2100-03-16T04:00:00.000Z", "0.8"],
				],
			),
		);
		expect(await query(tenant, "jobs", "MONTH", zone, "2100-02-01T05:00:00Z", "2100-04-01T04:00:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"MONTH",
				["2100-02-01T05:00:00.000Z", "2100-04-01T04:00:00.000Z"],
				[
					["2100-02-01T05:00:00.000Z", "2100-03-01T05:00:00.000Z", "1"],
					["2100-03-01T05:00:00.000Z", "2100-04-01T04:00:00.000Z", "7"],
				],
			),
		);
	});
});

describe("windows in a zone whose clocks skip midnight", () => {
	useFrozenClock(() => freezeClockAt(Date.UTC(2100, 8, 7, 12)));

	it("starts Santiago's 5 September 2100 at 01:00 (its first instant), and the next day at midnight again", async () => {
		// At 04:00 UTC on 5 September, Santiago's clocks go from 23:59:59.999 (-04) to 01:00 (-03).
		const tenant = await tenantWith([
			job("2100-09-05T03:30:00.000Z"),
			job("2100-09-05T04:00:00.000Z"),
			job("2100-09-06T02:59:59.999Z"),
			job("2100-09-06T03:00:00.000Z"),
		]);
		const zone = "America/Santiago";
		expect(await query(tenant, "jobs", "DAY", zone, "2100-09-04T04:00:00Z", "2100-09-07T03:00:00Z")).toEqual(
			answer(
				"jobs",
				zone,
				"DAY",
				["2100-09-04T04:00:00.000Z", "2100-09-07T03:00:00.000Z"],
				[
					["2100-09-04T04:00:00.000Z", "2100-09-05T04:00:00.000Z", "1"],
					["2100-09-05T04:00:00.000Z", "2100-09-06T03:00:00.000Z", "2"],
					["2100-09-06T03:00:00.000Z", "2100-09-07T03:00:00.000Z", "1"],
				],
			),
		);
	});
});
