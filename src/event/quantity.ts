// Fixed-point usage quantities: integer micro-units, so that sums are exact (10 × 0.1 = 1).

export const MICROS_PER_UNIT = 1_000_000;
/** The largest quantity one event may carry: its micro-units stay a safe integer. */
export const MAX_QUANTITY = 9_000_000_000;

/** Below this a fraction of 6 digits survives a JSON number exactly (a double's step here is < 10^-6). */
const EXACT_FRACTION_BELOW = 2 ** 33;
const DECIMAL = /^(\d{1,10})(?:\.(\d{1,6}))?$/;

/**
 * Converts a quantity to micro-units, or returns a reason it cannot be billed exactly. A JSON
 * number is read as numberToMicros reads it; a decimal string is always exact.
 */
export function toMicros(value: unknown): number | string {
	if (typeof value === "number") return numberToMicros(value);
	if (typeof value !== "string") return "must be a number or a decimal string";
	if (!DECIMAL.test(value)) return "must be a number, or a decimal string with at most 6 fraction digits";
	return decimalToMicros(value);
}

/**
 * A JSON number as micro-units, or why it cannot be exact. It is read from its shortest decimal
 * form, so 0.1 becomes exactly 100000; one with a fraction must stay below 2^33, where a double
 * can no longer hold every 6-digit fraction (a client's 8999999999.999999 would arrive as …998).
 * `signed` admits negatives (a meter's value may be one; a billed quantity may not).
 */
export function numberToMicros(value: number, signed = false): number | string {
	if (!Number.isFinite(value)) return "must be finite";
	if (value < 0 && !signed) return "must be ≥ 0";
	const abs = Math.abs(value);
	if (abs > MAX_QUANTITY) return `must be ≤ ${MAX_QUANTITY}${signed ? " in magnitude" : ""}`;
	// The common case, a whole number, needs no decimal text (and -0 becomes 0).
	if (Number.isInteger(abs)) return abs === 0 ? 0 : value * MICROS_PER_UNIT;
	const text = String(abs);
	// Below 1e-6 JavaScript prints an exponent: that is more than 6 fraction digits.
	if (text.includes("e")) return "has more than 6 fraction digits";
	if (abs >= EXACT_FRACTION_BELOW) {
		return `has a fraction and is ≥ ${EXACT_FRACTION_BELOW}, which a JSON number cannot carry exactly; send it as a decimal string`;
	}
	const micros = decimalToMicros(text);
	return typeof micros === "number" && value < 0 ? -micros : micros;
}

/** Micro-units of a non-negative decimal text with an optional fraction. */
export function decimalToMicros(text: string): number | string {
	const [whole, fraction = ""] = text.split(".");
	if (fraction.length > 6) return "has more than 6 fraction digits";
	if (Number(text) > MAX_QUANTITY) return `must be ≤ ${MAX_QUANTITY}`;
	return Number(whole) * MICROS_PER_UNIT + Number(fraction.padEnd(6, "0"));
}

/** Formats integer micro-units (as a decimal string of any size) as an exact decimal. */
export function formatMicros(micros: string | number | bigint): string {
	const value = BigInt(micros);
	const negative = value < 0n;
	const abs = negative ? -value : value;
	const whole = abs / 1_000_000n;
	const fraction = (abs % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "");
	return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""}`;
}
