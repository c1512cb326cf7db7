// Fixed-point usage quantities: integer micro-units, so that sums are exact (10 × 0.1 = 1).

export const MICROS_PER_UNIT = 1_000_000;
/** The largest quantity one event may carry: its micro-units stay a safe integer. */
export const MAX_QUANTITY = 9_000_000_000;

/**
 * Converts a JSON number to micro-units, or returns a reason it cannot be billed exactly.
 * It reads the number's shortest decimal form, so 0.1 becomes exactly 100000.
 */
export function toMicros(value: unknown): number | string {
	if (typeof value !== "number") return "must be a number";
	if (!Number.isFinite(value)) return "must be finite";
	if (value < 0) return "must be ≥ 0";
	if (value > MAX_QUANTITY) return `must be ≤ ${MAX_QUANTITY}`;
	const text = String(value);
	// Below 1e-6 JavaScript prints an exponent: that is more than 6 fraction digits.
	if (text.includes("e")) return "has more than 6 fraction digits";
	const [whole, fraction = ""] = text.split(".");
	if (fraction.length > 6) return "has more than 6 fraction digits";
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
