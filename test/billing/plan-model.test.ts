// Plan definitions: a full plan normalized and round-tripped through its JSON shape, and every rule refused with its exact issues.
import { describe, expect, it } from "vitest";
import { planFromJson, planToJson, validatePlan } from "../../src/billing/plan-model";

const METERS: ReadonlySet<string> = new Set(["api_calls", "llm_tokens"]);
const NUMBER_AMOUNT = 'must be a decimal string such as "0.0015", not a JSON number, which cannot carry 12 fraction digits exactly';
const FRACTION_NUMBER = 'must be an integer when sent as a JSON number; send a fraction as a decimal string such as "0.5"';
const KEY_RULE = 'must be 1-64 lower-case letters and digits, words joined by single underscores ("pro_monthly")';
const DESCRIPTION_RULE = "must be a string of at most 1000 characters";
const MIN_ABOVE = "must not exceed maximumAmount (5.5)";
const SAME_UNIT = "prices the same sku and unit as rateCards[0]";
const ISO = "must be an ISO 4217 code such as USD";
const CARDS_RULE = "must be an array of at most 50 rate cards";
const TIERS_RULE = "must be an array of 1-20 tiers";
const BOTH = "names both a meter and a sku; a rate card prices exactly one of them";
const ONLY_LAST = "must be a quantity: only the last tier may be unbounded";
const COVERS = "a card without a unit covers every unit of its sku";
const POSITIVE = "must be greater than 0";
const AFTER = (bound: string) => `must be greater than the tier before's (${bound})`;
/** Paths inside the first rate card, and the later cards. */
const C = "rateCards[0]";
const [C1, C2] = ["rateCards[1]", "rateCards[2]"];
const P = `${C}.price`;
const T = `${C}.price.tiers`;

const UNIT_CARD = { meter: "api_calls", price: { model: "unit", amount: "0.01" } };
const [T1, T2, LAST] = [{ upTo: "1000", unitAmount: "0.002" }, { upTo: "10000", unitAmount: "0.0015" }, { unitAmount: "0.001" }];
type Body = Record<string, unknown>;
const plan = (fields: Body = {}) => ({ key: "pro", currency: "USD", interval: "month", rateCards: [UNIT_CARD], ...fields });
const cards = (...rateCards: unknown[]) => plan({ rateCards });
const withCard = (fields: Body) => cards({ ...UNIT_CARD, ...fields });
const priced = (price: Body) => withCard({ price });
const tiered = (...tiers: unknown[]) => priced({ model: "graduated", tiers });
const sku = (name: string, unit?: string) => ({ sku: name, ...(unit !== undefined && { unit }), price: UNIT_CARD.price });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

// The request, in an odd field order, with defaults left out and decimals not minimal.
const FULL = {
	rateCards: [
		{
			meter: "api_calls",
			description: "API calls",
			price: { model: "graduated", tiers: [{ ...T1, flatAmount: "1.50" }, { upTo: 10000, unitAmount: "0.0015" }, LAST] },
			freeQuantity: "100",
			minimumAmount: "5",
			maximumAmount: "500.000",
		},
		{ meter: "llm_tokens", price: { model: "unit", amount: "0.000002" }, minimumAmount: null },
		{
			...sku("gpt-4o", "input_tokens"),
			price: { model: "volume", tiers: [{ upTo: "1000000.5", unitAmount: "0.0000025" }, { unitAmount: "0.000002" }] },
		},
		{ ...sku("gpt-4o", "output_tokens"), price: { model: "package", amount: "0.01", quantityPerPackage: 1000 } },
		{ sku: "storage", price: { model: "unit", amount: "0.000000000001" } },
	],
	flatFee: "49.00",
	interval: "month",
	currency: "USD",
	description: "For teams",
	name: "Pro",
	key: "pro_monthly",
};

const NONE = { freeQuantity: 0n, minimumAmount: null, maximumAmount: null };
const NORMALIZED = {
	key: "pro_monthly",
	name: "Pro",
	currency: "USD",
	interval: "month",
	flatFee: 49_000_000_000_000n,
	rateCards: [
		{
			target: { meter: "api_calls" },
			description: "API calls",
			price: {
				model: "graduated",
				tiers: [
					{ upTo: 1_000_000_000n, unitAmount: 2_000_000_000n, flatAmount: 1_500_000_000_000n },
					{ upTo: 10_000_000_000n, unitAmount: 1_500_000_000n, flatAmount: 0n },
					{ upTo: null, unitAmount: 1_000_000_000n, flatAmount: 0n },
				],
			},
			freeQuantity: 100_000_000n,
			minimumAmount: 5_000_000_000_000n,
			maximumAmount: 500_000_000_000_000n,
		},
		{ target: { meter: "llm_tokens" }, price: { model: "unit", amount: 2_000_000n }, ...NONE },
		{
			target: { sku: "gpt-4o", unit: "input_tokens" },
			price: {
				model: "volume",
				tiers: [
					{ upTo: 1_000_000_500_000n, unitAmount: 2_500_000n, flatAmount: 0n },
					{ upTo: null, unitAmount: 2_000_000n, flatAmount: 0n },
				],
			},
			...NONE,
		},
		{
			target: { sku: "gpt-4o", unit: "output_tokens" },
			price: { model: "package", amount: 10_000_000_000n, quantityPerPackage: 1_000_000_000n },
			...NONE,
		},
		{ target: { sku: "storage" }, price: { model: "unit", amount: 1n }, ...NONE },
	],
	description: "For teams",
};

const NONE_JSON = { freeQuantity: "0", minimumAmount: null, maximumAmount: null };
const JSON_SHAPE = {
	key: "pro_monthly",
	name: "Pro",
	description: "For teams",
	currency: "USD",
	interval: "month",
	flatFee: "49",
	rateCards: [
		{
			meter: "api_calls",
			description: "API calls",
			price: {
				model: "graduated",
				tiers: [
					{ upTo: "1000", unitAmount: "0.002", flatAmount: "1.5" },
					{ upTo: "10000", unitAmount: "0.0015", flatAmount: "0" },
					{ upTo: null, unitAmount: "0.001", flatAmount: "0" },
				],
			},
			freeQuantity: "100",
			minimumAmount: "5",
			maximumAmount: "500",
		},
		{ meter: "llm_tokens", price: { model: "unit", amount: "0.000002" }, ...NONE_JSON },
		{
			sku: "gpt-4o",
			unit: "input_tokens",
			price: {
				model: "volume",
				tiers: [
					{ upTo: "1000000.5", unitAmount: "0.0000025", flatAmount: "0" },
					{ upTo: null, unitAmount: "0.000002", flatAmount: "0" },
				],
			},
			...NONE_JSON,
		},
		{ sku: "gpt-4o", unit: "output_tokens", price: { model: "package", amount: "0.01", quantityPerPackage: "1000" }, ...NONE_JSON },
		{ sku: "storage", price: { model: "unit", amount: "0.000000000001" }, ...NONE_JSON },
	],
};

describe("validatePlan", () => {
	it("normalizes a full plan, its fields in one order", () => {
		const { plan: definition, issues } = validatePlan(FULL, METERS);
		expect(issues).toEqual([]);
		expect(definition).toEqual(NORMALIZED);
		expect(Object.keys(definition!)).toEqual(["key", "name", "currency", "interval", "flatFee", "rateCards", "description"]);
	});

	it("defaults the name to the key, the flat fee to 0, and takes no rate cards", () => {
		expect(validatePlan(plan({ rateCards: [] }), METERS)).toEqual({
			plan: { key: "pro", name: "pro", currency: "USD", interval: "month", flatFee: 0n, rateCards: [] },
			issues: [],
		});
	});

	it.each([
		["a yearly plan in JPY", plan({ interval: "year", currency: "JPY" })],
		["a zero flat fee", plan({ flatFee: "0" })],
		["a 64-character key", plan({ key: "k".repeat(64) })],
		["a 200-character name", plan({ name: "n".repeat(200) })],
		["50 rate cards", cards(...range(50).map((i) => sku(`sku_${i}`)))],
		["20 tiers", tiered(...range(19).map((i) => ({ upTo: String(i + 1), unitAmount: "1" })), { unitAmount: "0" })],
		["a minimum equal to the maximum", withCard({ minimumAmount: "5", maximumAmount: "5.0" })],
		["a sku card per unit", cards(sku("gpt", "in"), sku("gpt", "out"))],
		["a sku named like a meter", cards(UNIT_CARD, sku("api_calls"))],
	])("accepts %s", (_, body) => {
		expect(validatePlan(body, METERS).issues).toEqual([]);
	});

	it.each([
		["an array body", [], "body", "must be a JSON object"],
		["an unknown field", plan({ trialDays: 14 }), "trialDays", "unknown field"],
		// A spread defines "__proto__" as an own key, as JSON.parse does.
		["a __proto__ key", { ...plan(), ...JSON.parse('{"__proto__":{}}') }, "__proto__", "forbidden key"],
		["an upper-case key", plan({ key: "Pro" }), "key", KEY_RULE],
		["a 65-character key", plan({ key: "k".repeat(65) }), "key", KEY_RULE],
		["an empty name", plan({ name: "" }), "name", "must be a string of 1-200 characters"],
		["a 1001-character description", plan({ description: "d".repeat(1001) }), "description", DESCRIPTION_RULE],
		["an unknown currency", plan({ currency: "XYZ" }), "currency", "unknown currency XYZ; an ISO 4217 code such as USD"],
		["a metal", plan({ currency: "XAU" }), "currency", "unknown currency XAU; an ISO 4217 code such as USD"],
		["a lower-case currency", plan({ currency: "usd" }), "currency", "must be upper case: USD"],
		["a currency name", plan({ currency: "US Dollar" }), "currency", ISO],
		["a numeric currency code", plan({ currency: 840 }), "currency", ISO],
		["a weekly interval", plan({ interval: "week" }), "interval", 'must be "month" or "year"'],
		["a number flat fee", plan({ flatFee: 49 }), "flatFee", NUMBER_AMOUNT],
		["a negative flat fee", plan({ flatFee: "-1" }), "flatFee", "must not be negative"],
		["rate cards as an object", plan({ rateCards: {} }), "rateCards", CARDS_RULE],
		["51 rate cards", cards(...range(51).map((i) => sku(`sku_${i}`))), "rateCards", CARDS_RULE],
		["a string rate card", cards("api_calls"), C, "must be an object"],
		["an unknown rate card field", withCard({ quantity: "1" }), `${C}.quantity`, "unknown field"],
		["a card for an unknown meter", withCard({ meter: "storage_gb" }), `${C}.meter`, "no meter named storage_gb"],
		["a meter that is no slug", withCard({ meter: "API Calls" }), `${C}.meter`, "must be a meter slug"],
		["both a meter and a sku", withCard({ sku: "gpt" }), C, BOTH],
		["neither a meter nor a sku", cards({ price: UNIT_CARD.price }), C, "must name a meter or a sku"],
		["a unit on a meter card", withCard({ unit: "calls" }), `${C}.unit`, "is for a sku rate card; a meter has no units"],
		["an empty sku", cards(sku("")), `${C}.sku`, "must be a string of 1-200 characters"],
		["a 51-character unit", cards(sku("gpt", "u".repeat(51))), `${C}.unit`, "must be a string of 1-50 characters"],
		["no price", cards({ meter: "api_calls" }), P, "is required"],
		["an unknown model", priced({ model: "tiered", amount: "1" }), `${P}.model`, "must be one of unit, graduated, volume, package"],
		["a unit price without an amount", priced({ model: "unit" }), `${P}.amount`, "is required"],
		["a unit price with tiers", priced({ model: "unit", amount: "1", tiers: [] }), `${P}.tiers`, "unknown field"],
		["a number amount", priced({ model: "unit", amount: 0.01 }), `${P}.amount`, NUMBER_AMOUNT],
		["a negative price", priced({ model: "unit", amount: "-1" }), `${P}.amount`, "must not be negative"],
		["a package without its size", priced({ model: "package", amount: "1" }), `${P}.quantityPerPackage`, "is required"],
		["an empty package", priced({ model: "package", amount: "1", quantityPerPackage: "0" }), `${P}.quantityPerPackage`, POSITIVE],
		["no tiers", tiered(), T, TIERS_RULE],
		["21 tiers", tiered(...range(21).map((i) => ({ upTo: String(i + 1), unitAmount: "1" }))), T, TIERS_RULE],
		["volume without tiers", priced({ model: "volume" }), T, "is required"],
		["unsorted tiers", tiered(T2, T1, LAST), `${T}[1].upTo`, AFTER("10000")],
		["overlapping tiers", tiered(T1, { upTo: "1000.000", unitAmount: "1" }, LAST), `${T}[1].upTo`, AFTER("1000")],
		["a bounded last tier", tiered(T1, T2), `${T}[1].upTo`, "must be null: the last tier is unbounded"],
		["an unbounded middle tier", tiered(T1, { upTo: null, unitAmount: "1" }, LAST), `${T}[1].upTo`, ONLY_LAST],
		["a middle tier without upTo", tiered({ unitAmount: "1" }, LAST), `${T}[0].upTo`, ONLY_LAST],
		["a zero upTo", tiered({ upTo: 0, unitAmount: "1" }, LAST), `${T}[0].upTo`, POSITIVE],
		["a tier without its unit amount", tiered(T1, {}), `${T}[1].unitAmount`, "is required"],
		["a negative tier unit amount", tiered({ upTo: "10", unitAmount: "-1" }, LAST), `${T}[0].unitAmount`, "must not be negative"],
		["a number flat amount", tiered({ ...T1, flatAmount: 5 }, LAST), `${T}[0].flatAmount`, NUMBER_AMOUNT],
		["an unknown tier field", tiered({ ...T1, to: "10" }, LAST), `${T}[0].to`, "unknown field"],
		["a string tier", tiered("10", LAST), `${T}[0]`, "must be an object"],
		["a negative free quantity", withCard({ freeQuantity: "-1" }), `${C}.freeQuantity`, "must not be negative"],
		["a fractional number free quantity", withCard({ freeQuantity: 0.5 }), `${C}.freeQuantity`, FRACTION_NUMBER],
		["a zero minimum", withCard({ minimumAmount: "0" }), `${C}.minimumAmount`, POSITIVE],
		["a number maximum", withCard({ maximumAmount: 100 }), `${C}.maximumAmount`, NUMBER_AMOUNT],
		["a minimum above the maximum", withCard({ minimumAmount: "10", maximumAmount: "5.50" }), `${C}.minimumAmount`, MIN_ABOVE],
		["two cards for one meter", cards(UNIT_CARD, UNIT_CARD), `${C1}.meter`, "prices the same meter as rateCards[0]"],
		["one sku and unit twice", cards(sku("gpt", "in"), sku("gpt", "out"), sku("gpt", "in")), `${C2}.sku`, SAME_UNIT],
		["a card per unit after one for every unit", cards(sku("gpt"), sku("gpt", "in")), `${C1}.sku`, `overlaps rateCards[0]: ${COVERS}`],
		[
			"a card for every unit after one per unit",
			cards(UNIT_CARD, sku("gpt", "in"), sku("gpt")),
			`${C2}.sku`,
			`overlaps rateCards[1]: ${COVERS}`,
		],
		["two cards for one sku without a unit", cards(sku("gpt"), sku("gpt")), "rateCards[1].sku", `overlaps rateCards[0]: ${COVERS}`],
	])("refuses %s", (_, body, path, message) => {
		expect(validatePlan(body, METERS)).toEqual({ issues: [{ path, message }] });
	});

	it("names every required field of an empty object", () => {
		expect(validatePlan({}, METERS).issues).toEqual(
			["key", "currency", "interval", "rateCards"].map((path) => ({ path, message: "is required" })),
		);
	});

	it("reports a duplicate card that has other issues too", () => {
		expect(validatePlan(cards(UNIT_CARD, { ...UNIT_CARD, price: { model: "unit", amount: 1 } }), METERS).issues).toEqual([
			{ path: "rateCards[1].price.amount", message: NUMBER_AMOUNT },
			{ path: "rateCards[1].meter", message: "prices the same meter as rateCards[0]" },
		]);
	});

	it("reports every bad field at once, in field order", () => {
		const card = { meter: "nope", sku: "x", price: { model: "unit", amount: 1 }, freeQuantity: "-1" };
		expect(validatePlan(plan({ key: "Pro", currency: "usd", extra: 1, rateCards: [card] }), METERS).issues).toEqual([
			{ path: "extra", message: "unknown field" },
			{ path: "key", message: KEY_RULE },
			{ path: "currency", message: "must be upper case: USD" },
			{ path: C, message: BOTH },
			{ path: `${P}.amount`, message: NUMBER_AMOUNT },
			{ path: `${C}.freeQuantity`, message: "must not be negative" },
		]);
	});
});

describe("planToJson and planFromJson", () => {
	it("writes the API shape: decimal strings with minimal digits, unbounded tiers as null", () => {
		const json = planToJson(validatePlan(FULL, METERS).plan!);
		expect(json).toEqual(JSON_SHAPE);
		expect(Object.keys(json)).toEqual(["key", "name", "description", "currency", "interval", "flatFee", "rateCards"]);
	});

	it("round-trips a plan through stored JSON text", () => {
		const stored = JSON.stringify(planToJson(validatePlan(FULL, METERS).plan!));
		expect(planFromJson(JSON.parse(stored))).toEqual(NORMALIZED);
		expect(planToJson(planFromJson(JSON.parse(stored)))).toEqual(JSON_SHAPE);
	});

	it("reads back a plan whose meter has been deleted since", () => {
		const stored = { ...JSON_SHAPE, rateCards: [{ ...JSON_SHAPE.rateCards[1], meter: "old_meter" }] };
		expect(planFromJson(stored).rateCards.map((card) => card.target)).toEqual([{ meter: "old_meter" }]);
	});

	it("throws on a corrupt stored plan", () => {
		const corrupt = { ...JSON_SHAPE, currency: "XYZ" };
		expect(() => planFromJson(corrupt)).toThrow("corrupt stored plan: currency: unknown currency XYZ; an ISO 4217 code such as USD");
		expect(() => planFromJson("{}")).toThrow("corrupt stored plan: body: must be a JSON object");
	});
});
