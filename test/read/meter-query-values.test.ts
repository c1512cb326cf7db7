// Meter query values at their edges, each asserted exactly before and after the flush (and merged
// across both): AVG rounded half away from zero to the micro-unit, LATEST's tie at one instant
// won by the larger value whichever side holds it, sums past 2^53 exact in valueDecimal, signed
// MIN and MAX, and events without a customer or a group value answered as null.
import { describe, expect, it } from "vitest";
import { createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import { createMeter, flush, HOUR, ingestDirect, iso, queryMeter, type MeterBody, type WireEvent } from "./meter-helpers";

const NOW = Date.UTC(2100, 10, 20, 12);
const T = NOW - HOUR;
const RANGE = { from: NOW - 2 * HOUR, to: NOW };
useFrozenClock(() => freezeClockAt(NOW));

let next = 0;
const reading = (value: unknown, extra: Partial<WireEvent> = {}): WireEvent => ({
	id: `x-${next++}`,
	event: "reading",
	timestamp: T,
	properties: { value },
	...extra,
});
const meter = (slug: string, aggregation: MeterBody["aggregation"], groupBy?: Record<string, string>): MeterBody => ({
	slug,
	eventType: "reading",
	aggregation,
	...(aggregation !== "COUNT" && { valueProperty: "value" }),
	...(groupBy && { groupBy }),
});
const point = (valueDecimal: string, customerId: string | null = null, groupBy: Record<string, string | null> = {}) => ({
	windowStart: iso(RANGE.from),
	windowEnd: iso(RANGE.to),
	value: Number(valueDecimal),
	valueDecimal,
	customerId,
	groupBy,
});

async function tenantWith(...meters: MeterBody[]): Promise<TestTenant> {
	const tenant = await createTenant();
	for (const body of meters) await createMeter(tenant, body);
	return tenant;
}
const data = async (tenant: TestTenant, slug: string, q: Parameters<typeof queryMeter>[2] = {}) =>
	(await queryMeter(tenant, slug, { ...RANGE, ...q })).data;

describe("meter values", () => {
	it("rounds AVG half away from zero to the micro-unit", async () => {
		const tenant = await tenantWith(meter("avg", "AVG", { sign: "sign" }));
		const values = { up: [0.000001, 0.000002], down: [0.000001, 0, 0], negative: [-0.000001, -0.000002], third: [1, 1, 2] };
		const events = Object.entries(values).flatMap(([sign, list]) =>
			list.map((value) => reading(value, { properties: { value, sign } })),
		);
		expect(await ingestDirect(tenant, events)).toBe(events.length);
		// 0.0000003̅ → 0; -0.0000015 → -0.000002; 1.3̅ → 1.333333; 0.0000015 → 0.000002.
		const expected = [
			point("0", null, { sign: "down" }),
			point("-0.000002", null, { sign: "negative" }),
			point("1.333333", null, { sign: "third" }),
			point("0.000002", null, { sign: "up" }),
		];
		expect(await data(tenant, "avg", { groupBy: ["sign"] })).toEqual(expected);
		expect(await flush(tenant)).toBeGreaterThan(0);
		expect(await data(tenant, "avg", { groupBy: ["sign"] })).toEqual(expected);
	});

	it("breaks LATEST's tie at one instant by the larger value, in D1, pending and merged", async () => {
		const tenant = await tenantWith(meter("latest", "LATEST"));
		expect(await ingestDirect(tenant, [reading(5), reading(-3, { timestamp: T - 1 })])).toBe(2);
		expect(await data(tenant, "latest")).toEqual([point("5")]);
		expect(await flush(tenant)).toBeGreaterThan(0);
		// Pending at the same instant: a smaller value loses to D1's, a larger one wins.
		expect(await ingestDirect(tenant, [reading(3)])).toBe(1);
		expect(await data(tenant, "latest")).toEqual([point("5")]);
		expect(await ingestDirect(tenant, [reading(7.5)])).toBe(1);
		expect(await data(tenant, "latest")).toEqual([point("7.5")]);
		expect(await flush(tenant)).toBeGreaterThan(0);
		expect(await data(tenant, "latest")).toEqual([point("7.5")]);
		// An earlier instant never wins, however large.
		expect(await ingestDirect(tenant, [reading(1_000, { timestamp: T - 1 })])).toBe(1);
		expect(await data(tenant, "latest")).toEqual([point("7.5")]);
	});

	it("keeps sums past 2^53 micro-units exact, and signed MIN and MAX", async () => {
		const tenant = await tenantWith(meter("sum", "SUM"), meter("min", "MIN"), meter("max", "MAX"));
		expect(await ingestDirect(tenant, [reading(9_000_000_000), reading(9_000_000_000), reading(0.000001)])).toBe(3);
		expect(await data(tenant, "sum")).toEqual([point("18000000000.000001")]);
		expect(await flush(tenant)).toBeGreaterThan(0);
		expect(await ingestDirect(tenant, [reading(9_000_000_000), reading(-0.5)])).toBe(2);
		expect(await data(tenant, "sum")).toEqual([point("26999999999.500001")]);
		expect(await data(tenant, "min")).toEqual([point("-0.5")]);
		expect(await data(tenant, "max")).toEqual([point("9000000000")]);
		expect(await flush(tenant)).toBeGreaterThan(0);
		expect(await data(tenant, "sum")).toEqual([point("26999999999.500001")]);
		expect(await data(tenant, "min")).toEqual([point("-0.5")]);
	});

	it("answers null for no customer and for a missing group value, and sorts them after the others", async () => {
		const tenant = await tenantWith(meter("count", "COUNT", { plan: "plan" }));
		const events = [
			reading(1, { properties: { plan: "pro" } }),
			reading(1, { properties: { plan: "pro" }, customerId: "acme" }),
			reading(1, { properties: {} }),
			reading(1, { properties: { plan: "free" }, customerId: "acme" }),
			reading(1, { properties: { plan: 2 }, customerId: "zeta" }),
		];
		expect(await ingestDirect(tenant, events)).toBe(5);
		expect(await data(tenant, "count", { groupBy: ["customerId", "plan"] })).toEqual([
			point("1", null, { plan: "pro" }),
			point("1", null, { plan: null }),
			point("1", "acme", { plan: "free" }),
			point("1", "acme", { plan: "pro" }),
			point("1", "zeta", { plan: "2" }),
		]);
		expect(await data(tenant, "count", { groupBy: ["plan"] })).toEqual([
			point("1", null, { plan: "2" }),
			point("1", null, { plan: "free" }),
			point("2", null, { plan: "pro" }),
			point("1", null, { plan: null }),
		]);
		expect(await data(tenant, "count", { customerId: "acme", groupBy: ["plan"], filter: { plan: "pro" } })).toEqual([
			point("1", "acme", { plan: "pro" }),
		]);
	});
});
