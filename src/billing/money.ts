// Exact money: prices as BigInt picos (10^-12), quantities as micro-units, amounts at scale 18, rounded half-even once.
import type { FieldIssue } from "../shared/errors.js";

/** Fraction digits a price may carry: amounts are held as BigInt picos (10^-12 units). */
export const PRICE_SCALE = 12;
/** Fraction digits of a quantity: integer micro-units (10^-6), as the event pipeline counts them. */
export const QUANTITY_SCALE = 6;
/** A price in picos × a quantity in micros lands at 10^-18: every exact amount is a BigInt at this scale. */
export const EXACT_SCALE = PRICE_SCALE + QUANTITY_SCALE;

/*
 * Active ISO 4217 currencies by minor-unit digits (List One). Left out: funds codes (BOV, CHE, CHW,
 * COU, MXV, USN, UYI), metals (XAU, XAG, XPT, XPD), the testing and no-currency codes (XTS, XXX),
 * special units (XDR, XSU, XUA, XBA-XBD), and withdrawn codes (ANG → XCG, BGN → EUR, HRK, SLL, ZWL).
 * CLF and UYW are units of account with 4 digits; they are kept because invoices are issued in them.
 */
const CODES_BY_DIGITS: Readonly<Record<number, string>> = {
	0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF",
	2:
		"AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CNY COP CRC CUC CUP " +
		"CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS " +
		"KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD " +
		"PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP " +
		"TRY TTD TWD TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG",
	3: "BHD IQD JOD KWD LYD OMR TND",
	4: "CLF UYW",
};

/** Currency code → its minor-unit digits (USD 2, JPY 0, BHD 3). Look codes up with Object.hasOwn. */
export const CURRENCIES: Readonly<Record<string, number>> = Object.freeze(
	Object.fromEntries(
		Object.entries(CODES_BY_DIGITS).flatMap(([digits, codes]) => codes.split(" ").map((code) => [code, Number(digits)])),
	),
);

const AMOUNT = /^\d{1,15}(?:\.\d{1,12})?$/;
const QUANTITY = /^\d{1,15}(?:\.\d{1,6})?$/;
export const AMOUNT_RULE = 'must be a decimal string of at most 15 integer and 12 fraction digits, such as "0.0015"';
export const QUANTITY_RULE = "must be a non-negative integer, or a decimal string of at most 15 integer and 6 fraction digits";

/**
 * A non-negative money amount in picos, or undefined with one issue at `path`. Only a decimal
 * string is taken: a JSON number is a double, which cannot carry 12 fraction digits exactly.
 * Zero is refused unless `allowZero`.
 */
export function parseAmount(value: unknown, path: string, issues: FieldIssue[], options: { allowZero?: boolean } = {}): bigint | undefined {
	const fail = (message: string) => (issues.push({ path, message }), undefined);
	if (typeof value === "number")
		return fail('must be a decimal string such as "0.0015", not a JSON number, which cannot carry 12 fraction digits exactly');
	if (typeof value !== "string") return fail(AMOUNT_RULE);
	if (value.startsWith("-") && AMOUNT.test(value.slice(1))) return fail("must not be negative");
	if (!AMOUNT.test(value)) return fail(AMOUNT_RULE);
	const picos = scaledInteger(value, PRICE_SCALE);
	if (picos === 0n && !options.allowZero) return fail("must be greater than 0");
	return picos;
}

/**
 * A non-negative quantity in micro-units, or undefined with one issue at `path`: a decimal string
 * of up to 6 fraction digits, or a JSON integer (a fractional JSON number is refused rather than
 * trusted to its shortest decimal form). Zero is refused when `positive`.
 */
export function parseQuantity(
	value: unknown,
	path: string,
	issues: FieldIssue[],
	options: { positive?: boolean } = {},
): bigint | undefined {
	const fail = (message: string) => (issues.push({ path, message }), undefined);
	let text: string;
	if (typeof value === "number") {
		if (Number.isFinite(value) && value < 0) return fail("must not be negative");
		if (!Number.isSafeInteger(value))
			return fail(
				Number.isInteger(value)
					? QUANTITY_RULE
					: 'must be an integer when sent as a JSON number; send a fraction as a decimal string such as "0.5"',
			);
		// A safe integer prints without an exponent; -0 prints as "0".
		text = String(value);
	} else if (typeof value === "string") {
		if (value.startsWith("-") && QUANTITY.test(value.slice(1))) return fail("must not be negative");
		text = value;
	} else return fail(QUANTITY_RULE);
	if (!QUANTITY.test(text)) return fail(QUANTITY_RULE);
	const micros = scaledInteger(text, QUANTITY_SCALE);
	if (micros === 0n && options.positive) return fail("must be greater than 0");
	return micros;
}

/** An unsigned decimal text (already matched) as an integer count of 10^-scale. */
function scaledInteger(text: string, scale: number): bigint {
	const [whole, fraction = ""] = text.split(".");
	return BigInt(whole! + fraction.padEnd(scale, "0"));
}

/** numerator / denominator rounded to the nearest integer, ties to the even one, symmetric around zero. */
export function roundHalfEven(numerator: bigint, denominator: bigint): bigint {
	if (denominator <= 0n) throw new RangeError("roundHalfEven: the denominator must be positive");
	const negative = numerator < 0n;
	const abs = negative ? -numerator : numerator;
	let quotient = abs / denominator;
	const twice = (abs % denominator) * 2n;
	if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) quotient += 1n;
	return negative ? -quotient : quotient;
}

/**
 * An exact amount (scale 18), divided by `divisor`, rounded half-even to minor units (10^-minorDigits).
 * The divisor lets a prorated fee (fee × seconds / periodSeconds) be rounded once, not twice.
 */
export function toMinor(exact: bigint, minorDigits: number, divisor = 1n): bigint {
	if (!Number.isInteger(minorDigits) || minorDigits < 0 || minorDigits > EXACT_SCALE)
		throw new RangeError(`toMinor: minorDigits must be an integer 0-${EXACT_SCALE}`);
	if (divisor <= 0n) throw new RangeError("toMinor: the divisor must be positive");
	return roundHalfEven(exact, divisor * 10n ** BigInt(EXACT_SCALE - minorDigits));
}

/**
 * An integer count of 10^-scale as exact decimal text: no exponent, "-" for negatives, trailing
 * fraction zeros trimmed but at least `minFraction` fraction digits kept ("12.30" with 2).
 */
export function formatScaled(value: bigint, scale: number, minFraction = 0): string {
	const negative = value < 0n;
	const abs = negative ? -value : value;
	const text = abs.toString().padStart(scale + 1, "0");
	const whole = text.slice(0, text.length - scale);
	let fraction = text.slice(text.length - scale);
	let end = fraction.length;
	while (end > minFraction && fraction[end - 1] === "0") end--;
	fraction = fraction.slice(0, end);
	return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}

/** Minor units as the currency writes them: every minor digit shown ("12.30", JPY "1234", BHD "0.005"). */
export function formatMinor(minor: bigint, minorDigits: number): string {
	return formatScaled(minor, minorDigits, minorDigits);
}
