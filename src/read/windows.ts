// Time windows for the query APIs: consecutive [start, end) windows of a minute, hour, day, week
// (from Monday) or month, in UTC or in an IANA time zone (whose offset may change with daylight
// saving time, so a day may last 23 or 25 hours).
import { invalidField } from "../shared/errors.js";

export type WindowSize = "minute" | "hour" | "day" | "week" | "month";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Offsets only change on quarter hours of UTC, so one lookup per quarter hour is exact. */
const QUARTER_MS = 15 * MINUTE_MS;

/** A time zone's UTC offset at an instant, in ms; cached per quarter hour. */
export class Zone {
	private readonly format: Intl.DateTimeFormat | null;
	private readonly offsets = new Map<number, number>();

	constructor(readonly name: string) {
		this.format =
			name === "UTC"
				? null
				: new Intl.DateTimeFormat("en-US", {
						timeZone: name,
						hourCycle: "h23",
						year: "numeric",
						month: "numeric",
						day: "numeric",
						hour: "numeric",
						minute: "numeric",
					});
	}

	/** The zone named by a query parameter, or a 400 naming it. */
	static parse(name: string | null, field: string): Zone {
		if (name === null || name === "UTC") return new Zone("UTC");
		try {
			return new Zone(name);
		} catch {
			throw invalidField(field, "must be an IANA time zone such as Europe/Berlin, or UTC");
		}
	}

	offset(ms: number): number {
		if (this.format === null) return 0;
		const quarter = Math.floor(ms / QUARTER_MS);
		let offset = this.offsets.get(quarter);
		if (offset === undefined) {
			const at = quarter * QUARTER_MS;
			const parts = Object.fromEntries(this.format.formatToParts(at).map((part) => [part.type, Number(part.value)]));
			offset = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!) - at;
			this.offsets.set(quarter, offset);
		}
		return offset;
	}

	/**
	 * The first instant whose wall-clock time in this zone is at or after `wall` (a wall-clock time
	 * as ms of a UTC date with those fields): a time that occurs twice (clocks set back) is its first
	 * occurrence, and one that never occurs (clocks set forward) is the instant the clocks jump.
	 */
	private fromWall(wall: number): number {
		const offsets = [this.offset(wall - DAY_MS), this.offset(wall + DAY_MS)];
		const exact = offsets.map((offset) => wall - offset).filter((t) => t + this.offset(t) === wall);
		if (exact.length > 0) return Math.min(...exact);
		// In a gap: the clocks jump on a quarter hour between the two candidates.
		const [from, to] = offsets.map((offset) => wall - offset).sort((a, b) => a - b) as [number, number];
		for (let t = Math.ceil(from / QUARTER_MS) * QUARTER_MS; t < to; t += QUARTER_MS) if (t + this.offset(t) >= wall) return t;
		return to;
	}

	/** The start of the window holding `ms`. */
	windowStart(ms: number, size: WindowSize): number {
		if (size === "minute" || size === "hour") {
			// The offset in force at `ms` itself, so each occurrence of a repeated hour is its own window.
			const unit = size === "minute" ? MINUTE_MS : HOUR_MS;
			const local = ms + this.offset(ms);
			return ms - (((local % unit) + unit) % unit);
		}
		const wall = new Date(ms + this.offset(ms));
		const y = wall.getUTCFullYear();
		const m = wall.getUTCMonth();
		let d = wall.getUTCDate();
		if (size === "week") d -= (wall.getUTCDay() + 6) % 7;
		if (size === "month") d = 1;
		return this.fromWall(Date.UTC(y, m, d));
	}

	/** The start of the window after the one starting at `start`. */
	nextWindow(start: number, size: WindowSize): number {
		if (size === "minute") return start + MINUTE_MS;
		if (size === "hour") return start + HOUR_MS;
		const wall = new Date(start + this.offset(start));
		const y = wall.getUTCFullYear();
		const m = wall.getUTCMonth();
		const d = wall.getUTCDate();
		if (size === "day") return this.fromWall(Date.UTC(y, m, d + 1));
		if (size === "week") return this.fromWall(Date.UTC(y, m, d + 7));
		return this.fromWall(Date.UTC(y, m + 1, 1));
	}
}

/**
 * The windows covering [from, to): the first starts at or before `from`, the last ends at or after
 * `to`. Refuses more than `max` of them with a 400 naming `field`.
 */
export function windowsOf(zone: Zone, from: number, to: number, size: WindowSize, max: number, field: string): [number, number][] {
	const windows: [number, number][] = [];
	for (let start = zone.windowStart(from, size); start < to;) {
		const end = zone.nextWindow(start, size);
		windows.push([start, end]);
		if (windows.length > max)
			throw invalidField(field, `the range holds more than ${max} ${size} windows; narrow it or use a larger window`);
		start = end;
	}
	return windows;
}
