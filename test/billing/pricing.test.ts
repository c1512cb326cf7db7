// Price models against hand-computed amounts: every model, tier edges at upTo and one micro-unit past, free quantity, minimum and maximum.
import { describe, expect, it } from "vitest";
import { priceQuantity, type PriceModel, type RateCardPrice, type Tier } from "../../src/billing/pricing";

/** An integer of 10^-scale from its decimal text, parsed here rather than by the code under test. */
function scaled(text: string, scale: number): bigint {
	const negative = text.startsWith("-");
	const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
	const value = BigInt(whole + fraction.padEnd(scale, "0"));
	return negative ? -value : value;
}
const picos = (text: string) => scaled(text, 12);
const micros = (text: string) => scaled(text, 6);
const exact = (text: string) => scaled(text, 18);

const tier = (upTo: string | null, unitAmount: string, flatAmount = "0"): Tier => ({
	upTo: upTo === null ? null : micros(upTo),
	unitAmount: picos(unitAmount),
	flatAmount: picos(flatAmount),
});
const card = (price: PriceModel, fields: Partial<Omit<RateCardPrice, "price">> = {}): RateCardPrice => ({
	price,
	freeQuantity: 0n,
	minimumAmount: null,
	maximumAmount: null,
	...fields,
});
const amountOf = (rateCard: RateCardPrice, quantity: string) => priceQuantity(rateCard, micros(quantity)).amount;

const GRADUATED = card({ model: "graduated", tiers: [tier("1000", "0.002"), tier("10000", "0.0015"), tier(null, "0.001")] });
const FLAT_FIRST = card({ model: "graduated", tiers: [tier("100", "0", "10"), tier("1000", "0.01", "5"), tier(null, "0.005")] });
const VOLUME = card({ model: "volume", tiers: [tier("1000", "0.002", "0.5"), tier("10000", "0.0015", "1"), tier(null, "0.001")] });
const PACKAGE = card({ model: "package", amount: picos("2.5"), quantityPerPackage: micros("100") });

describe("unit price", () => {
	it.each([
		["0.000002", "1234567", "2.469134"],
		["0.000000000001", "1000000", "0.000001"],
		["0.000000000001", "0.000001", "0.000000000000000001"],
		["0.01", "0", "0"],
		["0.01", "0.5", "0.005"],
		["3", "2.000001", "6.000003"],
		["999999999999999.999999999999", "1", "999999999999999.999999999999"],
	])("%s per unit × %s units = %s", (price, quantity, amount) => {
		const priced = priceQuantity(card({ model: "unit", amount: picos(price) }), micros(quantity));
		expect(priced).toEqual({
			quantity: micros(quantity),
			freeQuantity: 0n,
			billable: micros(quantity),
			tiers: [],
			usageAmount: exact(amount),
			adjustment: null,
			amount: exact(amount),
		});
	});
});

describe("graduated tiers", () => {
	it.each([
		["0", "0"],
		["500", "1"],
		["1000", "2"],
		["1000.000001", "2.0000000015"],
		["10000", "15.5"],
		["10000.000001", "15.500000001"],
		["25000", "30.5"],
	])("prices %s units as %s", (quantity, amount) => {
		expect(amountOf(GRADUATED, quantity)).toBe(exact(amount));
	});

	it("keeps a quantity exactly at upTo in its tier", () => {
		expect(priceQuantity(GRADUATED, micros("1000")).tiers).toEqual([
			{
				tier: 1,
				from: 0n,
				upTo: micros("1000"),
				quantity: micros("1000"),
				unitAmount: picos("0.002"),
				flatAmount: 0n,
				amount: exact("2"),
			},
		]);
	});

	it("enters the next tier one micro-unit past upTo", () => {
		expect(priceQuantity(GRADUATED, micros("1000.000001")).tiers).toEqual([
			{
				tier: 1,
				from: 0n,
				upTo: micros("1000"),
				quantity: micros("1000"),
				unitAmount: picos("0.002"),
				flatAmount: 0n,
				amount: exact("2"),
			},
			{
				tier: 2,
				from: micros("1000"),
				upTo: micros("10000"),
				quantity: 1n,
				unitAmount: picos("0.0015"),
				flatAmount: 0n,
				amount: exact("0.0000000015"),
			},
		]);
	});

	it("lists every tier reached, the last unbounded", () => {
		const lines = priceQuantity(GRADUATED, micros("25000")).tiers;
		expect(lines.map((line) => [line.tier, line.from, line.upTo, line.quantity, line.amount])).toEqual([
			[1, 0n, micros("1000"), micros("1000"), exact("2")],
			[2, micros("1000"), micros("10000"), micros("9000"), exact("13.5")],
			[3, micros("10000"), null, micros("15000"), exact("15")],
		]);
	});

	it("lists the first tier at zero usage", () => {
		expect(priceQuantity(GRADUATED, 0n).tiers).toEqual([
			{ tier: 1, from: 0n, upTo: micros("1000"), quantity: 0n, unitAmount: picos("0.002"), flatAmount: 0n, amount: 0n },
		]);
	});

	it.each([
		// The first tier's flat fee is a base fee: billed at zero usage too.
		["0", "10"],
		["100", "10"],
		// One micro-unit into tier 2: its flat 5 plus 0.000001 × 0.01.
		["100.000001", "15.00000001"],
		["1000", "24"],
		["1500", "26.5"],
	])("with flat tiers prices %s units as %s", (quantity, amount) => {
		expect(amountOf(FLAT_FIRST, quantity)).toBe(exact(amount));
	});

	it("bills a flat first tier at zero usage", () => {
		expect(priceQuantity(FLAT_FIRST, 0n)).toEqual({
			quantity: 0n,
			freeQuantity: 0n,
			billable: 0n,
			tiers: [{ tier: 1, from: 0n, upTo: micros("100"), quantity: 0n, unitAmount: 0n, flatAmount: picos("10"), amount: exact("10") }],
			usageAmount: exact("10"),
			adjustment: null,
			amount: exact("10"),
		});
	});

	it("charges a later tier's flat fee only once the quantity enters it", () => {
		expect(priceQuantity(FLAT_FIRST, micros("100")).tiers.map((line) => line.tier)).toEqual([1]);
		expect(priceQuantity(FLAT_FIRST, micros("100.000001")).tiers.map((line) => [line.tier, line.amount])).toEqual([
			[1, exact("10")],
			[2, exact("5.00000001")],
		]);
	});

	it("prices one unbounded tier like a unit price", () => {
		expect(amountOf(card({ model: "graduated", tiers: [tier(null, "0.25", "1")] }), "4")).toBe(exact("2"));
	});
});

describe("volume tiers", () => {
	it.each([
		// Zero usage falls in the first tier: its flat amount is billed.
		["0", 1, "0.5"],
		["1", 1, "0.502"],
		["1000", 1, "2.5"],
		["1000.000001", 2, "2.5000000015"],
		["10000", 2, "16"],
		["10000.000001", 3, "10.000000001"],
		["20000", 3, "20"],
	])("prices %s units in tier %i as %s", (quantity, tierNumber, amount) => {
		const priced = priceQuantity(VOLUME, micros(quantity));
		expect(priced.tiers.map((line) => [line.tier, line.quantity, line.amount])).toEqual([
			[tierNumber, micros(quantity), exact(amount)],
		]);
		expect(priced.amount).toBe(exact(amount));
	});

	it("names the tier's bounds", () => {
		expect(priceQuantity(VOLUME, micros("5000")).tiers).toEqual([
			{
				tier: 2,
				from: micros("1000"),
				upTo: micros("10000"),
				quantity: micros("5000"),
				unitAmount: picos("0.0015"),
				flatAmount: picos("1"),
				amount: exact("8.5"),
			},
		]);
	});
});

describe("packages", () => {
	it.each([
		["0", 0n, "0"],
		["0.000001", 1n, "2.5"],
		["100", 1n, "2.5"],
		["100.000001", 2n, "5"],
		["250", 3n, "7.5"],
		["300", 3n, "7.5"],
	])("prices %s units as %s packages, %s", (quantity, packages, amount) => {
		const priced = priceQuantity(PACKAGE, micros(quantity));
		expect([priced.packages, priced.tiers, priced.amount]).toEqual([packages, [], exact(amount)]);
	});

	it("packs the billable quantity, after the free quantity", () => {
		const priced = priceQuantity({ ...PACKAGE, freeQuantity: micros("50") }, micros("150"));
		expect([priced.freeQuantity, priced.billable, priced.packages, priced.amount]).toEqual([
			micros("50"),
			micros("100"),
			1n,
			exact("2.5"),
		]);
	});

	it("takes a package price with 12 fraction digits", () => {
		const rateCard = card({ model: "package", amount: picos("0.000000000001"), quantityPerPackage: micros("0.5") });
		expect(priceQuantity(rateCard, micros("1")).amount).toBe(exact("0.000000000002"));
	});
});

describe("free quantity", () => {
	const UNIT = card({ model: "unit", amount: picos("0.01") }, { freeQuantity: micros("100") });

	it.each([
		["less than it", "40", "40", "0", "0"],
		["equal to it", "100", "100", "0", "0"],
		["more than it", "250", "100", "150", "1.5"],
		["one micro-unit more", "100.000001", "100", "0.000001", "0.00000001"],
	])("deducts it from usage %s", (_, quantity, free, billable, amount) => {
		const priced = priceQuantity(UNIT, micros(quantity));
		expect([priced.quantity, priced.freeQuantity, priced.billable, priced.amount]).toEqual([
			micros(quantity),
			micros(free),
			micros(billable),
			exact(amount),
		]);
	});

	it("deducts it before the graduated tiers", () => {
		// 1000.000001 − 0.000001 free = exactly 1000: the first tier only.
		const priced = priceQuantity({ ...GRADUATED, freeQuantity: 1n }, micros("1000.000001"));
		expect([priced.billable, priced.tiers.length, priced.amount]).toEqual([micros("1000"), 1, exact("2")]);
	});

	it("bills a negative quantity as zero", () => {
		const priced = priceQuantity(UNIT, -5n);
		expect([priced.quantity, priced.freeQuantity, priced.billable, priced.amount]).toEqual([-5n, 0n, 0n, 0n]);
	});
});

describe("minimum and maximum", () => {
	const BOUNDED = card({ model: "unit", amount: picos("0.01") }, { minimumAmount: picos("5"), maximumAmount: picos("20") });

	it.each([
		["0", "0", { kind: "minimum", amount: exact("5") }, "5"],
		["100", "1", { kind: "minimum", amount: exact("4") }, "5"],
		["499.999999", "4.99999999", { kind: "minimum", amount: exact("0.00000001") }, "5"],
		["500", "5", null, "5"],
		["1000", "10", null, "10"],
		["2000", "20", null, "20"],
		["2000.000001", "20.00000001", { kind: "maximum", amount: exact("-0.00000001") }, "20"],
		["5000", "50", { kind: "maximum", amount: exact("-30") }, "20"],
	])("bounds usage of %s units (%s)", (quantity, usage, adjustment, amount) => {
		const priced = priceQuantity(BOUNDED, micros(quantity));
		expect([priced.usageAmount, priced.adjustment, priced.amount]).toEqual([exact(usage), adjustment, exact(amount)]);
	});

	it("compares the minimum to the whole usage amount, flat tiers included", () => {
		const priced = priceQuantity({ ...FLAT_FIRST, minimumAmount: picos("12.5") }, micros("50"));
		expect([priced.usageAmount, priced.adjustment, priced.amount]).toEqual([
			exact("10"),
			{ kind: "minimum", amount: exact("2.5") },
			exact("12.5"),
		]);
	});

	it("takes a maximum alone, and a minimum with 12 fraction digits", () => {
		const capped = card({ model: "unit", amount: picos("1") }, { maximumAmount: picos("0.5") });
		expect(priceQuantity(capped, micros("1")).adjustment).toEqual({ kind: "maximum", amount: exact("-0.5") });
		const floored = card({ model: "unit", amount: picos("0") }, { minimumAmount: picos("0.000000000001") });
		expect(priceQuantity(floored, micros("1")).amount).toBe(exact("0.000000000001"));
	});
});

describe("malformed prices", () => {
	it.each([
		["no tiers", { model: "graduated", tiers: [] }],
		["a bounded last tier", { model: "volume", tiers: [tier("10", "1")] }],
		["an unbounded middle tier", { model: "graduated", tiers: [tier(null, "1"), tier(null, "1")] }],
		["decreasing bounds", { model: "graduated", tiers: [tier("10", "1"), tier("5", "1"), tier(null, "1")] }],
		["an empty package", { model: "package", amount: 1n, quantityPerPackage: 0n }],
	] as [string, PriceModel][])("throw on %s", (_, price) => {
		expect(() => priceQuantity(card(price), micros("1"))).toThrow(RangeError);
	});
});
