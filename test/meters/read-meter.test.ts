// How one event reads for one meter: every aggregation, the skips, groups, filters, $. paths,
// usage fields, and what paths never reach (inherited keys, array items).
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { compileMeter, readMeter, validateMeter } from "../../src/meters/model";

const chars = (n: number) => "x".repeat(n);

/** A compiled meter: SUM of tokens over api_call events, with the fields replaced. */
function meter(fields: Record<string, unknown> = {}) {
	const { meter, issues } = validateMeter({ slug: "m", eventType: "api_call", aggregation: "SUM", valueProperty: "tokens", ...fields });
	expect(issues).toEqual([]);
	return compileMeter(meter!);
}
const counter = (fields: Record<string, unknown> = {}) => meter({ aggregation: "COUNT", valueProperty: undefined, ...fields });
const event = (fields: Partial<QueuedEvent> = {}): QueuedEvent => ({ id: "e1", event: "api_call", timestamp: 0, ...fields });
const props = (properties: Record<string, unknown>, fields: Partial<QueuedEvent> = {}) => event({ properties, ...fields });

describe("readMeter", () => {
	it("does not apply to another event type", () => {
		expect(readMeter(counter(), event({ event: "other" }))).toBeNull();
		expect(readMeter(meter(), props({ tokens: 1 }, { event: "other" }))).toBeNull();
	});

	it("counts an event for COUNT, with no value", () => {
		expect(readMeter(counter(), event())).toEqual({ groups: [] });
	});

	it("reads group values in groupBy order: strings, numbers and booleans as text, -0 as 0", () => {
		const m = counter({ groupBy: { s: "s", n: "n", t: "t", f: "f", z: "z" } });
		expect(readMeter(m, props({ s: "eu", n: 2.5, t: true, f: false, z: -0 }))).toEqual({ groups: ["eu", "2.5", "true", "false", "0"] });
	});

	it("reads null for a missing, object, array or null group value, and (other) past 256 characters", () => {
		const m = counter({ groupBy: { missing: "missing", o: "o", a: "a", n: "n", long: "long" } });
		expect(readMeter(m, props({ o: { x: 1 }, a: ["x"], n: null, long: chars(257) }))).toEqual({
			groups: [null, null, null, null, "(other)"],
		});
		expect(readMeter(counter({ groupBy: { edge: "edge" } }), props({ edge: chars(256) }))).toEqual({ groups: [chars(256)] });
	});

	it("reads groups from usage, nested and $. paths, and never from inherited keys or array items", () => {
		const usage = { sku: "gpt", unit: "token", micros: 1 };
		const deep = { a: { b: { c: { d: { e: "leaf" } } } }, list: ["first"] };
		const m = counter({ groupBy: { sku: "usage.sku", unit: "usage.unit", deep: "a.b.c.d.e", dollar: "$.a.b.c.d.e" } });
		expect(readMeter(m, props(deep, { usage }))).toEqual({ groups: ["gpt", "token", "leaf", "leaf"] });
		expect(readMeter(counter({ groupBy: { inherited: "toString", item: "list.0", sku: "usage.sku" } }), props(deep))).toEqual({
			groups: [null, null, null],
		});
	});

	it.each([
		[1.5, 1_500_000],
		[0.1, 100_000],
		[-2, -2_000_000],
		[-0.000001, -1],
		[-0, 0],
		[9_000_000_000, 9_000_000_000_000_000],
		[-9_000_000_000, -9_000_000_000_000_000],
		[8_589_934_591.999999, 8_589_934_591_999_999],
	])("reads %s as %s micro-units", (value, micros) => {
		expect(readMeter(meter(), props({ tokens: value }))).toEqual({ groups: [], micros });
	});

	it.each([
		["a numeric string", "3"],
		["a boolean", true],
		["null", null],
		["an object", { n: 1 }],
		["more than 6 fraction digits", 0.0000001],
		["7 fraction digits", 1.1234567],
		["more than 9,000,000,000", 9_000_000_001],
		["less than -9,000,000,000", -9_000_000_001],
		["a fraction at 2^33 or more", 8_589_934_592.5],
	])("skips %s as a value", (_, value) => {
		expect(readMeter(meter(), props({ tokens: value }))).toBe("skip");
	});

	it("skips a missing value, and an event without properties", () => {
		expect(readMeter(meter(), props({ other: 1 }))).toBe("skip");
		expect(readMeter(meter(), event())).toBe("skip");
	});

	it.each(["SUM", "MIN", "MAX", "AVG", "LATEST"])("reads the same micro-units for %s", (aggregation) => {
		expect(readMeter(meter({ aggregation, groupBy: { m: "model" } }), props({ tokens: 2, model: "a" }))).toEqual({
			groups: ["a"],
			micros: 2_000_000,
		});
	});

	it("reads usage.quantity as the usage's micro-units, and skips an event without usage", () => {
		const m = meter({ valueProperty: "usage.quantity" });
		expect(readMeter(m, event({ usage: { sku: "gpt", unit: "token", micros: 2_500_001 } }))).toEqual({ groups: [], micros: 2_500_001 });
		expect(readMeter(m, props({ quantity: 1 }))).toBe("skip");
	});

	it("reads $.tokens as the property tokens", () => {
		expect(readMeter(meter({ valueProperty: "$.tokens" }), props({ tokens: 3 }))).toEqual({ groups: [], micros: 3_000_000 });
	});

	it.each([
		["a string", "u-1", "u-1"],
		["a number", 42.5, "42.5"],
		["a boolean", true, "true"],
		["a 256-character string", chars(256), chars(256)],
	])("reads %s as a UNIQUE_COUNT key", (_, value, unique) => {
		expect(readMeter(meter({ aggregation: "UNIQUE_COUNT", valueProperty: "user" }), props({ user: value }))).toEqual({
			groups: [],
			unique,
		});
	});

	it.each([
		["a missing value", {}],
		["an object", { user: { id: 1 } }],
		["null", { user: null }],
		["a 257-character string", { user: chars(257) }],
	])("skips %s for UNIQUE_COUNT", (_, properties) => {
		expect(readMeter(meter({ aggregation: "UNIQUE_COUNT", valueProperty: "user" }), props(properties))).toBe("skip");
	});

	it("reads usage.sku as a UNIQUE_COUNT key", () => {
		const m = meter({ aggregation: "UNIQUE_COUNT", valueProperty: "usage.sku" });
		expect(readMeter(m, event({ usage: { sku: "gpt", unit: "token", micros: 1 } }))).toEqual({ groups: [], unique: "gpt" });
	});

	it("applies only when every filter holds, comparing by type", () => {
		const m = meter({ filter: { plan: ["pro", "team"], "$.beta": true, tier: 2, "usage.sku": "gpt" } });
		const usage = { sku: "gpt", unit: "token", micros: 1 };
		const matching = { tokens: 1, plan: "team", beta: true, tier: 2 };
		expect(readMeter(m, props(matching, { usage }))).toEqual({ groups: [], micros: 1_000_000 });
		expect(readMeter(m, props({ ...matching, plan: "free" }, { usage }))).toBeNull();
		expect(readMeter(m, props({ ...matching, beta: "true" }, { usage }))).toBeNull();
		expect(readMeter(m, props({ ...matching, tier: "2" }, { usage }))).toBeNull();
		expect(readMeter(m, props({ ...matching, tier: undefined }, { usage }))).toBeNull();
		expect(readMeter(m, props(matching, { usage: { ...usage, sku: "other" } }))).toBeNull();
		expect(readMeter(m, props(matching))).toBeNull();
	});

	it("checks the filter before the value: an event the filter excludes is never skipped", () => {
		expect(readMeter(meter({ filter: { plan: "pro" } }), props({ plan: "free", tokens: "x" }))).toBeNull();
	});
});
