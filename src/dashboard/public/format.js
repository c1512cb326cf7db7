// Number, money, time and change formatting, all through Intl in the browser's locale.
// The browser test formats the API's answers with the same rules (test/browser/helpers.ts).

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });
const percent = new Intl.NumberFormat(undefined, { style: "percent", minimumFractionDigits: 0, maximumFractionDigits: 2 });
const change = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1, signDisplay: "exceptZero" });
const points = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2, signDisplay: "exceptZero" });
const millis = new Intl.NumberFormat(undefined, { style: "unit", unit: "millisecond", unitDisplay: "short", maximumFractionDigits: 1 });
const seconds = new Intl.NumberFormat(undefined, { style: "unit", unit: "second", unitDisplay: "short", maximumFractionDigits: 1 });
const minutes = new Intl.NumberFormat(undefined, { style: "unit", unit: "minute", unitDisplay: "short", maximumFractionDigits: 1 });
const hours = new Intl.NumberFormat(undefined, { style: "unit", unit: "hour", unitDisplay: "short", maximumFractionDigits: 1 });
const currencies = new Map();

export const DASH = "—";

/** A count: "1,234". */
export function formatCount(n) {
	return n === null || n === undefined || Number.isNaN(n) ? DASH : integer.format(n);
}

/** An exact decimal string or number ("1250.5" → "1,250.5"); Intl keeps a string's digits. */
export function formatDecimal(value) {
	if (value === null || value === undefined) return DASH;
	return decimal.format(value);
}

/** A ratio 0..1 as a percentage: "16.67%". */
export function formatRate(r) {
	return r === null || r === undefined || Number.isNaN(r) ? DASH : percent.format(r);
}

/** Milliseconds: "182.4 ms". */
export function formatMs(ms) {
	return ms === null || ms === undefined || Number.isNaN(ms) ? DASH : millis.format(ms);
}

/** An age in ms as s, min or h. */
export function formatAge(ms) {
	if (ms === null || ms === undefined) return DASH;
	if (ms < 60_000) return seconds.format(ms / 1000);
	if (ms < 3_600_000) return minutes.format(ms / 60_000);
	return hours.format(ms / 3_600_000);
}

/** An exact decimal amount (invoice totalDecimal) in its ISO 4217 currency: "$30.39". */
export function formatMoney(amountDecimal, currency) {
	let format = currencies.get(currency);
	if (!format) currencies.set(currency, (format = new Intl.NumberFormat(undefined, { style: "currency", currency })));
	return format.format(amountDecimal);
}

/**
 * The change from `previous` to `current`: relative for counts and durations ("+12.5%"), in
 * percentage points for rates ("+1.2 pp"). null when there is nothing to compare with.
 */
export function formatChange(current, previous, kind = "relative") {
	if (current === null || previous === null || current === undefined || previous === undefined) return null;
	if (kind === "points") {
		const delta = (current - previous) * 100;
		return { text: `${points.format(delta)} pp`, direction: Math.sign(delta) };
	}
	if (previous === 0) return null;
	const ratio = (current - previous) / previous;
	return { text: change.format(ratio), direction: Math.sign(ratio) };
}

const dateTime = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const dateOnly = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const monthYear = new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric", timeZone: "UTC" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatDateTime(ms) {
	return dateTime.format(ms);
}

export function formatFull(ms) {
	return full.format(ms);
}

/** A UTC month: "December 2026". */
export function formatMonth(ms) {
	return monthYear.format(ms);
}

/** An axis tick for a window size: times for minutes and hours, dates for days. */
export function formatTick(ms, interval, spanMs) {
	if (interval === "day" || spanMs > 3 * 86_400_000) return dateOnly.format(ms);
	if (spanMs > 86_400_000) return dateTime.format(ms);
	return timeOnly.format(ms);
}

/** A range in local time: "Dec 1, 09:00 – Dec 2, 09:00". */
export function formatRange(from, to) {
	return `${dateTime.format(from)} – ${dateTime.format(to)}`;
}
