// Time ranges in UTC windows, as /v1/query/timeseries counts them: a range is aligned to its
// interval, so every window the API answers lies inside it, and the previous period is the same
// number of windows just before it.

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
export const UNIT_MS = { minute: MINUTE, hour: HOUR, day: DAY };
/** Minute series are kept this long (SERIES_MINUTE_RETENTION_MS); older minute reads are a 400. */
const MINUTE_RETENTION_MS = 7 * DAY;

export const PRESETS = {
	"1h": { span: HOUR, intervals: ["minute"], previous: "the hour before" },
	"24h": { span: DAY, intervals: ["hour"], previous: "the 24 h before" },
	"7d": { span: 7 * DAY, intervals: ["hour", "day"], previous: "the 7 days before" },
	"30d": { span: 30 * DAY, intervals: ["day"], previous: "the 30 days before" },
};

/** The last `span` of windows, ending with the window that holds `now`. */
export function presetRange(preset, interval, now) {
	const unit = UNIT_MS[interval];
	const to = Math.floor(now / unit) * unit + unit;
	return { from: to - PRESETS[preset].span, to, interval };
}

/** The intervals a custom range may use: minutes only for short, recent ranges (with the previous period). */
export function customIntervals(from, to, now) {
	const span = to - from;
	const options = [];
	if (span <= 6 * HOUR && from - span > now - MINUTE_RETENTION_MS + HOUR) options.push("minute");
	if (span <= 62 * DAY) options.push("hour");
	options.push("day");
	return options;
}

export function defaultCustomInterval(options, span) {
	if (options.includes("minute") && span <= 3 * HOUR) return "minute";
	if (options.includes("hour") && span <= 14 * DAY) return "hour";
	return "day";
}

/** [from, to) rounded out to whole windows of `interval`. */
export function alignRange(from, to, interval) {
	const unit = UNIT_MS[interval];
	const start = Math.floor(from / unit) * unit;
	const end = Math.max(Math.ceil(to / unit) * unit, start + unit);
	return { from: start, to: end, interval };
}

const LEVELS = ["month", "week", "day", "hour", "minute"];

function floorTo(ms, level) {
	if (level in UNIT_MS) return Math.floor(ms / UNIT_MS[level]) * UNIT_MS[level];
	const date = new Date(ms);
	if (level === "month") return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
	const day = Math.floor(ms / DAY) * DAY;
	return day - ((new Date(day).getUTCDay() + 6) % 7) * DAY; // weeks start on Monday
}

function nextBoundary(ms, level) {
	if (level in UNIT_MS) return ms + UNIT_MS[level];
	if (level === "week") return ms + 7 * DAY;
	const date = new Date(ms);
	return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}

function ceilTo(ms, level) {
	const floor = floorTo(ms, level);
	return floor === ms ? ms : nextBoundary(floor, level);
}

/**
 * [from, to) as the fewest contiguous pieces of whole months, weeks, days, hours and minutes (no
 * finer than `finest`), so a breakdown summed over the range asks for few points per series.
 */
export function cover(from, to, finest) {
	const levels = LEVELS.slice(0, LEVELS.indexOf(finest) + 1);
	const walk = (a, b, first) => {
		if (a >= b) return [];
		for (let i = first; i < levels.length; i++) {
			const start = ceilTo(a, levels[i]);
			const end = floorTo(b, levels[i]);
			if (start < end) return [...walk(a, start, i + 1), { from: start, to: end, interval: levels[i] }, ...walk(end, b, i + 1)];
		}
		return [];
	};
	return walk(from, to, 0);
}

/** "2026-12-02T09:30" in local time, for datetime-local inputs. */
export function toLocalInput(ms) {
	const date = new Date(ms);
	const pad = (n) => String(n).padStart(2, "0");
	return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
