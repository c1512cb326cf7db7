// Meters in the aggregator: readings whose value is missing or not a number skipped and counted
// (never a 5xx), UNIQUE_COUNT exact up to 10,000 values in a minute row and flagged estimated past
// it, and the SQLite rows an ingest writes with ten grouped meters against none.
import { describe, expect, it } from "vitest";
import { addValue, countUnique, emptySketch } from "../../src/shared/hll";
import { createTenant, useFrozenClock, type TestTenant } from "../helpers";
import {
	createMeter,
	flush,
	ingestDirect,
	metricsOf,
	MINUTE,
	postEvents,
	queryMeter,
	untilConsumed,
	type MeterBody,
	type WireEvent,
} from "../read/meter-helpers";
import { aggregator, AT, freezeClock } from "./helpers";

useFrozenClock(freezeClock);

let next = 0;
const job = (properties: Record<string, unknown>, extra: Partial<WireEvent> = {}): WireEvent => ({
	id: `m-${next++}`,
	event: "job",
	timestamp: AT["13:59:30.000"],
	properties,
	...extra,
});
/** The one value a query over 13:00-15:00 answers, or none. */
const valuesOf = async (tenant: TestTenant, slug: string) =>
	(await queryMeter(tenant, slug, { from: Date.parse("2100-03-10T13:00:00Z"), to: Date.parse("2100-03-10T15:00:00Z") })).data.map(
		(point) => point.valueDecimal,
	);

describe("meter_skipped", () => {
	it("skips and counts each reading whose value is missing, not a number or not exact, and answers 2xx throughout", async () => {
		const tenant = await createTenant();
		await createMeter(tenant, { slug: "cost", eventType: "job", aggregation: "SUM", valueProperty: "cost" });
		await createMeter(tenant, { slug: "users", eventType: "job", aggregation: "UNIQUE_COUNT", valueProperty: "user" });
		await createMeter(tenant, { slug: "billed", eventType: "job", aggregation: "SUM", valueProperty: "usage.quantity" });
		await createMeter(tenant, { slug: "jobs", eventType: "job", aggregation: "COUNT" });
		await createMeter(tenant, {
			slug: "pro_cost",
			eventType: "job",
			aggregation: "MAX",
			valueProperty: "cost",
			filter: { plan: "pro" },
		});
		const usage = (quantity: number) => ({ usage: { sku: "s", quantity } });
		// Skips per event: cost, users, billed, pro_cost (COUNT never skips).
		const events = [
			job({ cost: 1.5, user: "a" }, usage(2)), // none
			job({ user: "b" }), // cost (missing), billed (no usage)
			job({ cost: "12", user: 42 }), // cost (a numeric string is not a number), billed
			job({ cost: 0.1234567, user: true, plan: "pro" }), // cost and pro_cost (7 fraction digits), billed
			job({ cost: -2.25, user: { id: 1 } }, usage(0.5)), // users (an object)
			job({ cost: 9_000_000_001, user: "x".repeat(257) }), // cost (past 9·10^9), users (past 256 characters), billed
			job({ cost: null, plan: "pro" }), // cost, pro_cost, users (missing), billed
			job({ cost: 1e-7, user: "c" }), // cost (an exponent: more than 6 fraction digits), billed
			job({ cost: 8_999_999_999.5, user: "a" }), // cost (a fraction past 2^33), billed
			job({ cost: 3, plan: "free", user: "a" }), // billed; pro_cost's filter does not match: not skipped
			job({ cost: [1], user: ["a"] }), // cost, users (arrays), billed
			job({ cost: true }), // cost, users, billed
			job({ cost: "bad" }, { event: "other" }), // no meter counts "other": nothing skipped
		];
		await postEvents(tenant, events);
		await untilConsumed(tenant, events.length);

		const expectAnswers = async () => {
			expect(await valuesOf(tenant, "cost")).toEqual(["2.25"]);
			expect(await valuesOf(tenant, "users")).toEqual(["5"]);
			expect(await valuesOf(tenant, "billed")).toEqual(["2.5"]);
			expect(await valuesOf(tenant, "jobs")).toEqual(["12"]);
			expect(await valuesOf(tenant, "pro_cost")).toEqual([]);
		};
		await expectAnswers();
		expect(await flush(tenant)).toBeGreaterThan(0);
		await expectAnswers();
		// cost 9, users 5, billed 10, pro_cost 2.
		expect(await metricsOf(tenant)).toMatchObject({
			consumed: 13,
			aggregated: 13,
			meterSkipped: 26,
			deadLettered: 0,
			flushFailures: 0,
		});
	});
});

describe("UNIQUE_COUNT past 10,000 values", () => {
	const visit = (visitor: string, timestamp: number): WireEvent => ({
		id: `v-${next++}`,
		event: "visit",
		timestamp,
		properties: { visitor },
	});
	const minute = Date.parse("2100-03-10T13:10:00Z");
	const window = (start: number, end: number, value: string, estimated = false) => ({
		windowStart: new Date(start).toISOString(),
		windowEnd: new Date(end).toISOString(),
		value: Number(value),
		valueDecimal: value,
		customerId: null,
		groupBy: {},
		...(estimated && { estimated: true }),
	});
	const estimateOf = (values: string[]) => {
		const sketch = emptySketch();
		for (const value of values) addValue(sketch, value);
		return String(countUnique(sketch));
	};

	it("is exact at 10,000 values in one minute row, and estimated (flagged) past them", { timeout: 60_000 }, async () => {
		const tenant = await createTenant();
		await createMeter(tenant, { slug: "visitors", eventType: "visit", aggregation: "UNIQUE_COUNT", valueProperty: "visitor" });
		const values = Array.from({ length: 10_000 }, (_, i) => `v${i}`);
		expect(
			await ingestDirect(
				tenant,
				values.map((value, i) => visit(value, minute + (i % 60) * 1000)),
				10_000,
			),
		).toBe(10_000);
		// A value already counted, in a new event, changes nothing.
		expect(await ingestDirect(tenant, [visit("v5", minute + 59_999)])).toBe(1);
		const byMinute = { from: minute, to: minute + 2 * MINUTE, windowSize: "MINUTE" as const };
		const whole = { from: minute, to: minute + 2 * MINUTE };

		expect((await queryMeter(tenant, "visitors", byMinute)).data).toEqual([window(minute, minute + MINUTE, "10000")]);
		expect(await flush(tenant)).toBeGreaterThan(0);
		expect((await queryMeter(tenant, "visitors", byMinute)).data).toEqual([window(minute, minute + MINUTE, "10000")]);

		// One value in the next minute: each row stays exact, their union of 10,001 is an estimate.
		expect(await ingestDirect(tenant, [visit("w0", minute + MINUTE)])).toBe(1);
		expect((await queryMeter(tenant, "visitors", byMinute)).data).toEqual([
			window(minute, minute + MINUTE, "10000"),
			window(minute + MINUTE, minute + 2 * MINUTE, "1"),
		]);
		const union = estimateOf([...values, "w0"]);
		expect((await queryMeter(tenant, "visitors", whole)).data).toEqual([window(minute, minute + 2 * MINUTE, union, true)]);

		// The 10,001st value of the first minute (pending, merged with D1's row): that row is an estimate now.
		expect(await ingestDirect(tenant, [visit("v10000", minute + 30_000)])).toBe(1);
		const row = estimateOf([...values, "v10000"]);
		const expected = [window(minute, minute + MINUTE, row, true), window(minute + MINUTE, minute + 2 * MINUTE, "1")];
		expect((await queryMeter(tenant, "visitors", byMinute)).data).toEqual(expected);
		expect(Math.abs(Number(row) - 10_001)).toBeLessThan(300);
		expect(await flush(tenant)).toBeGreaterThan(0);
		expect((await queryMeter(tenant, "visitors", byMinute)).data).toEqual(expected);
		expect((await queryMeter(tenant, "visitors", whole)).data).toEqual([
			window(minute, minute + 2 * MINUTE, estimateOf([...values, "v10000", "w0"]), true),
		]);
	});
});

describe("SQLite rows per ingest", () => {
	const METERS = Array.from({ length: 10 }, (_, i): MeterBody => {
		const aggregation = (["SUM", "COUNT", "MIN", "MAX", "AVG", "UNIQUE_COUNT", "LATEST", "SUM", "COUNT", "MAX"] as const)[i]!;
		const groupBy: Record<string, string> = i % 2 === 0 ? { model: "model" } : { model: "model", region: "region" };
		const value = aggregation === "COUNT" ? {} : { valueProperty: aggregation === "UNIQUE_COUNT" ? "user" : "tokens" };
		return { slug: `meter_${i}`, eventType: "api_call", aggregation, groupBy, ...value };
	});
	const traffic = (hour: number, tag: string): WireEvent[] =>
		Array.from({ length: 100 }, (_, i) => ({
			id: `${tag}-${next++}`,
			event: "api_call",
			timestamp: hour + (i % 5) * MINUTE,
			customerId: `c${i % 2}`,
			properties: { model: ["gpt", "llama", "claude"][i % 3], region: ["eu", "us"][i % 2], tokens: i, user: `u${i % 7}` },
		}));
	const rowsWritten = async (tenant: TestTenant) => (await aggregator(tenant.id).operations()).sqlite_rows_written;
	/** The rows one ingest of `events` writes. */
	const cost = async (tenant: TestTenant, events: WireEvent[]) => {
		const before = await rowsWritten(tenant);
		expect(await ingestDirect(tenant, events)).toBe(100);
		return (await rowsWritten(tenant)) - before;
	};

	it("writes no more rows with ten grouped meters than with none once an hour's tuples are known, and one per hour before", async () => {
		const [metered, plain] = await Promise.all([createTenant(), createTenant()]);
		for (const body of METERS) await createMeter(metered, body);
		const hour = Date.parse("2100-03-10T13:00:00Z");
		const extra = async (events: (tag: string) => WireEvent[]) => (await cost(metered, events("m"))) - (await cost(plain, events("p")));

		// Observed: the first slice also registers the event name and inserts its 5 minutes' event
		// rows, in both tenants alike; with meters it adds one meter_groups row for the hour that
		// saw new group tuples (all ten meters' tuples in it). The meter deltas themselves cost
		// nothing extra: all ten meters' rows go into the slice's one packed chunk, which the
		// series rollup writes anyway.
		expect(await extra((tag) => traffic(hour, tag))).toBe(1);
		// Known tuples: exactly the rows of a tenant without meters.
		expect(await extra((tag) => traffic(hour, tag))).toBe(0);
		expect(await extra((tag) => traffic(hour, tag))).toBe(0);
		// A slice reaching two new hours: one row per hour.
		const twoHours = (tag: string) =>
			traffic(hour + 3_600_000, tag).map((event, i) => ({ ...event, timestamp: event.timestamp + (i % 2) * 3_600_000 }));
		expect(await extra(twoHours)).toBe(2);
	});
});
