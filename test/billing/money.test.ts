// Exact money: amounts and quantities parsed to BigInt or refused with one issue, half-even rounding to minor units, exact formatting.
import { describe, expect, it } from "vitest";
import {
	CURRENCIES,
	EXACT_SCALE,
	formatMinor,
	formatScaled,
	parseAmount,
	parseQuantity,
	PRICE_SCALE,
	roundHalfEven,
	toMinor,
} from "../../src/billing/money";
import type { FieldIssue } from "../../src/shared/errors";

const AMOUNT_RULE = 'must be a decimal string of at most 15 integer and 12 fraction digits, such as "0.0015"';
const NUMBER_AMOUNT = 'must be a decimal string such as "0.0015", not a JSON number, which cannot carry 12 fraction digits exactly';
const QUANTITY_RULE = "must be a non-negative integer, or a decimal string of at most 15 integer and 6 fraction digits";
const FRACTION_NUMBER = 'must be an integer when sent as a JSON number; send a fraction as a decimal string such as "0.5"';

/** An exact amount (scale 18) from its decimal text, parsed here rather than by the code under test. */
function exact(text: string): bigint {
	const negative = text.startsWith("-");
	const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
	const value = BigInt(whole + fraction.padEnd(18, "0"));
	return negative ? -value : value;
}

function parsed<T>(parse: (value: unknown, path: string, issues: FieldIssue[]) => T, value: unknown) {
	const issues: FieldIssue[] = [];
	return { value: parse(value, "x", issues), issues };
}

describe("scales and currencies", () => {
	it("holds prices at 10^-12 and exact amounts at 10^-18", () => {
		expect(PRICE_SCALE).toBe(12);
		expect(EXACT_SCALE).toBe(18);
	});

	it.each([
		["USD", 2],
		["EUR", 2],
		["GBP", 2],
		["CHF", 2],
		["XCG", 2],
		["ZWG", 2],
		["JPY", 0],
		["KRW", 0],
		["ISK", 0],
		["VND", 0],
		["XOF", 0],
		["XAF", 0],
		["XPF", 0],
		["CLP", 0],
		["PYG", 0],
		["UGX", 0],
		["BIF", 0],
		["VUV", 0],
		["BHD", 3],
		["KWD", 3],
		["JOD", 3],
		["OMR", 3],
		["TND", 3],
		["LYD", 3],
		["IQD", 3],
		["CLF", 4],
		["UYW", 4],
	])("knows %s has %i minor digits", (code, digits) => {
		expect(CURRENCIES[code]).toBe(digits);
	});

	it.each(["XAU", "XAG", "XPT", "XPD", "XTS", "XXX", "XDR", "XSU", "XUA", "XBA", "USN", "BOV", "CHE", "UYI", "HRK", "ZWL", "usd"])(
		"leaves out %s",
		(code) => {
			expect(Object.hasOwn(CURRENCIES, code)).toBe(false);
		},
	);

	it("holds only three-letter codes with 0, 2, 3 or 4 digits", () => {
		const entries = Object.entries(CURRENCIES);
		expect(entries.length).toBe(158);
		expect(entries.filter(([code, digits]) => !/^[A-Z]{3}$/.test(code) || ![0, 2, 3, 4].includes(digits))).toEqual([]);
		expect(Object.isFrozen(CURRENCIES)).toBe(true);
	});
});

describe("parseAmount", () => {
	it.each([
		["0.0015", 1_500_000_000n],
		["1", 1_000_000_000_000n],
		["2.5", 2_500_000_000_000n],
		["0.000000000001", 1n],
		["007.50", 7_500_000_000_000n],
		["999999999999999.999999999999", 999_999_999_999_999_999_999_999_999n],
	])("reads %s as %s picos", (text, picos) => {
		expect(parsed(parseAmount, text)).toEqual({ value: picos, issues: [] });
	});

	it.each([
		["a negative amount", "-1", "must not be negative"],
		["a negative fraction", "-0.5", "must not be negative"],
		["a JSON number", 1.5, NUMBER_AMOUNT],
		["a whole JSON number", 2, NUMBER_AMOUNT],
		["zero", "0", "must be greater than 0"],
		["zero with a fraction", "0.000", "must be greater than 0"],
		["13 fraction digits", "0.0000000000001", AMOUNT_RULE],
		["16 integer digits", "1234567890123456", AMOUNT_RULE],
		["an exponent", "1e3", AMOUNT_RULE],
		["a trailing point", "1.", AMOUNT_RULE],
		["a leading point", ".5", AMOUNT_RULE],
		["a plus sign", "+1", AMOUNT_RULE],
		["spaces", " 1", AMOUNT_RULE],
		["an empty string", "", AMOUNT_RULE],
		["a comma", "1,5", AMOUNT_RULE],
		["null", null, AMOUNT_RULE],
		["a bigint-looking string", "1n", AMOUNT_RULE],
	])("refuses %s", (_, value, message) => {
		expect(parsed(parseAmount, value)).toEqual({ value: undefined, issues: [{ path: "x", message }] });
	});

	it("takes zero when allowed", () => {
		const issues: FieldIssue[] = [];
		expect(parseAmount("0", "p", issues, { allowZero: true })).toBe(0n);
		expect(parseAmount("0.000000000000", "p", issues, { allowZero: true })).toBe(0n);
		expect(issues).toEqual([]);
	});

	it("appends to the issues it is given", () => {
		const issues: FieldIssue[] = [{ path: "a", message: "earlier" }];
		parseAmount(-1, "rateCards[0].price.amount", issues);
		expect(issues).toEqual([
			{ path: "a", message: "earlier" },
			{ path: "rateCards[0].price.amount", message: NUMBER_AMOUNT },
		]);
	});
});

describe("parseQuantity", () => {
	it.each([
		["1000", 1_000_000_000n],
		["1000.000001", 1_000_000_001n],
		["0.5", 500_000n],
		["0", 0n],
		[5, 5_000_000n],
		[0, 0n],
		[-0, 0n],
		[999_999_999_999_999, 999_999_999_999_999_000_000n],
		["999999999999999.999999", 999_999_999_999_999_999_999n],
	])("reads %s as %s micro-units", (value, micros) => {
		expect(parsed(parseQuantity, value)).toEqual({ value: micros, issues: [] });
	});

	it.each([
		["a negative string", "-1", "must not be negative"],
		["a negative number", -1, "must not be negative"],
		["a negative fractional number", -0.5, "must not be negative"],
		["a fractional number", 1.5, FRACTION_NUMBER],
		["NaN", NaN, FRACTION_NUMBER],
		["7 fraction digits", "1.0000001", QUANTITY_RULE],
		["16 integer digits", "1000000000000000", QUANTITY_RULE],
		["a 16-digit number", 1e15, QUANTITY_RULE],
		["an unsafe integer", 2 ** 53, QUANTITY_RULE],
		["an exponent string", "1e3", QUANTITY_RULE],
		["a boolean", true, QUANTITY_RULE],
		["null", null, QUANTITY_RULE],
	])("refuses %s", (_, value, message) => {
		expect(parsed(parseQuantity, value)).toEqual({ value: undefined, issues: [{ path: "x", message }] });
	});

	it("refuses zero when the quantity must be positive", () => {
		const issues: FieldIssue[] = [];
		expect(parseQuantity("0.000000", "upTo", issues, { positive: true })).toBeUndefined();
		expect(parseQuantity(0, "upTo", issues, { positive: true })).toBeUndefined();
		expect(parseQuantity("0.000001", "upTo", issues, { positive: true })).toBe(1n);
		expect(issues).toEqual([
			{ path: "upTo", message: "must be greater than 0" },
			{ path: "upTo", message: "must be greater than 0" },
		]);
	});
});

describe("roundHalfEven", () => {
	it.each([
		[5n, 2n, 2n],
		[7n, 2n, 4n],
		[-5n, 2n, -2n],
		[-7n, 2n, -4n],
		[1n, 3n, 0n],
		[2n, 3n, 1n],
		[-2n, 3n, -1n],
		[6n, 3n, 2n],
		[0n, 7n, 0n],
		[25n, 10n, 2n],
		[251n, 100n, 3n],
		[-251n, 100n, -3n],
	])("rounds %s / %s to %s", (numerator, denominator, expected) => {
		expect(roundHalfEven(numerator, denominator)).toBe(expected);
	});

	it("refuses a zero or negative denominator", () => {
		expect(() => roundHalfEven(1n, 0n)).toThrow(RangeError);
		expect(() => roundHalfEven(1n, -2n)).toThrow(RangeError);
	});
});

describe("toMinor", () => {
	it.each([
		["0.125", 2, 12n],
		["0.135", 2, 14n],
		["0.115", 2, 12n],
		["0.145", 2, 14n],
		["-0.125", 2, -12n],
		["-0.135", 2, -14n],
		["0.125000000000000001", 2, 13n],
		["0.124999999999999999", 2, 12n],
		["0.005", 2, 0n],
		["0.015", 2, 2n],
		["2.469134", 2, 247n],
		["0.000000000000000001", 2, 0n],
		["2.5", 0, 2n],
		["3.5", 0, 4n],
		["1234.5", 0, 1234n],
		["1234.500000000000000001", 0, 1235n],
		["-2.5", 0, -2n],
		["1.2345", 3, 1234n],
		["1.2355", 3, 1236n],
		["0.0005", 3, 0n],
		["0.0015", 3, 2n],
		["1.00005", 4, 10000n],
		["12.3", 18, 12_300_000_000_000_000_000n],
	])("rounds %s to %i digits as %s minor units", (amount, digits, minor) => {
		expect(toMinor(exact(amount), digits)).toBe(minor);
	});

	it.each([
		// A 10.00 monthly fee for 1 day of a 31-day month: 0.32258… → 0.32.
		["10", 86_400n, 2_678_400n, 32n],
		// 0.25 for half the period is exactly 0.125: one rounding, to the even 0.12.
		["0.25", 1_296_000n, 2_592_000n, 12n],
		// 0.03 for half: 0.015 → 0.02.
		["0.03", 1n, 2n, 2n],
		// The whole period: the fee itself.
		["19.99", 2_592_000n, 2_592_000n, 1999n],
	])("prorates %s × %s / %s once, to %s cents", (fee, seconds, periodSeconds, minor) => {
		expect(toMinor(exact(fee) * seconds, 2, periodSeconds)).toBe(minor);
	});

	it("rounds a prorated JPY fee to whole yen", () => {
		// 1000 yen for 15 of 30 days is 500; for 1 of 3 days 333.33… → 333.
		expect(toMinor(exact("1000") * 15n, 0, 30n)).toBe(500n);
		expect(toMinor(exact("1000"), 0, 3n)).toBe(333n);
		// 5 yen over 2 is 2.5 → 2 (even).
		expect(toMinor(exact("5"), 0, 2n)).toBe(2n);
	});

	it("refuses a bad digit count or divisor", () => {
		expect(() => toMinor(1n, -1)).toThrow(RangeError);
		expect(() => toMinor(1n, 19)).toThrow(RangeError);
		expect(() => toMinor(1n, 1.5)).toThrow(RangeError);
		expect(() => toMinor(1n, 2, 0n)).toThrow(RangeError);
	});
});

describe("formatScaled and formatMinor", () => {
	it.each([
		[1_234_500n, 4, 0, "123.45"],
		[1_234_500n, 4, 4, "123.4500"],
		[1_234_500n, 4, 3, "123.450"],
		[0n, 12, 0, "0"],
		[0n, 2, 2, "0.00"],
		[-5n, 3, 0, "-0.005"],
		[5n, 0, 0, "5"],
		[1n, 18, 0, "0.000000000000000001"],
		[2_469_134_000_000_000_000n, 18, 0, "2.469134"],
		[10n ** 30n, 12, 0, "1000000000000000000"],
		[1_500_000_000n, 12, 0, "0.0015"],
		[-1230n, 2, 2, "-12.30"],
		[-1230n, 2, 0, "-12.3"],
		[100n, 2, 0, "1"],
		[123_456_789_012_345_678_901_234_567_890n, 18, 0, "123456789012.34567890123456789"],
	])("writes %s at scale %i (min %i) as %s", (value, scale, minFraction, text) => {
		expect(formatScaled(value, scale, minFraction)).toBe(text);
	});

	it.each([
		[1230n, 2, "12.30"],
		[1234n, 0, "1234"],
		[5n, 3, "0.005"],
		[-7n, 2, "-0.07"],
		[0n, 2, "0.00"],
		[0n, 0, "0"],
		[10000n, 4, "1.0000"],
	])("writes %s minor units with %i digits as %s", (minor, digits, text) => {
		expect(formatMinor(minor, digits)).toBe(text);
	});
});
