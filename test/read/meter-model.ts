// The reference model every meter query answer must equal, computed independently of src/: the
// first copy of each event id, each meter's readings from its definition, values as BigInt
// micro-units, and windows from each zone's UTC offsets written out by hand.
import {
	HOUR,
	iso,
	MINUTE,
	type MeterBody,
	type MeterQuery,
	type QueryAnswer,
	type Scalar,
	type WindowSize,
	type WireEvent,
} from "./meter-helpers";

// ---- Windows, from each zone's UTC offsets ----

const NY_DST = [Date.UTC(2100, 2, 14, 7), Date.UTC(2100, 10, 7, 6)];
/** UTC offset (ms) of each zone the tests use, at an instant; New York's as its 2100 rules say. */
const ZONE_OFFSETS: Record<string, (ms: number) => number> = {
	UTC: () => 0,
	"Asia/Kolkata": () => 5.5 * HOUR,
	"America/New_York": (ms) => (ms >= NY_DST[0]! && ms < NY_DST[1]! ? -4 * HOUR : -5 * HOUR),
};

/** The windows covering [from, to) in a zone: the first holds `from`, the last ends at or after `to`. */
export function windowsIn(zone: string, from: number, to: number, size: WindowSize): [number, number][] {
	const offset = ZONE_OFFSETS[zone]!;
	const wall = (ms: number) => new Date(ms + offset(ms));
	// A wall-clock time (as a UTC date with its fields) back to the instant that shows it.
	const instant = (w: number) => [-14, 0, 14].map((h) => w - offset(w + h * HOUR)).find((u) => u + offset(u) === w)!;
	const startOf = (ms: number) => {
		const d = wall(ms);
		const [y, m, day, h, min] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes()];
		if (size === "MINUTE") return instant(Date.UTC(y, m, day, h, min));
		if (size === "HOUR") return instant(Date.UTC(y, m, day, h));
		return instant(size === "DAY" ? Date.UTC(y, m, day) : Date.UTC(y, m, 1));
	};
	const next = (start: number) => {
		if (size === "MINUTE") return start + MINUTE;
		if (size === "HOUR") return start + HOUR;
		const d = wall(start);
		const [y, m, day] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()];
		return instant(size === "DAY" ? Date.UTC(y, m, day + 1) : Date.UTC(y, m + 1, 1));
	};
	const windows: [number, number][] = [];
	for (let start = startOf(from); start < to; start = next(start)) windows.push([start, next(start)]);
	return windows;
}

// ---- The reference model ----

/** An event the aggregator took (the first copy of its id), and the ingest phase it arrived in. */
export interface Taken {
	event: WireEvent;
	phase: number;
}
/** A meter and the ingest phases it counted: [from, until). */
export interface MeterModel {
	body: MeterBody;
	from: number;
	until: number;
}

/** The first copy of each id, with its phase: later copies are duplicates. */
export function takenOf(sends: Taken[]): Taken[] {
	const seen = new Map<string, Taken>();
	for (const send of sends) if (!seen.has(send.event.id)) seen.set(send.event.id, send);
	return [...seen.values()];
}

/** A JSON number as exact micro-units: at most 6 fraction digits and 9·10^9 in magnitude, else null. */
function microsOf(value: unknown): bigint | null {
	if (typeof value !== "number") return null;
	const match = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(String(value));
	if (!match) return null;
	const micros = BigInt(match[2]!) * 1_000_000n + BigInt((match[3] ?? "").padEnd(6, "0"));
	if (micros > 9_000_000_000_000_000n) return null;
	return match[1] ? -micros : micros;
}

export function decimal(micros: bigint): string {
	const abs = micros < 0n ? -micros : micros;
	const fraction = (abs % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "");
	return `${micros < 0n ? "-" : ""}${abs / 1_000_000n}${fraction ? `.${fraction}` : ""}`;
}

function read(event: WireEvent, path: string): unknown {
	if (path === "usage.sku") return event.usage?.sku;
	let value: unknown = event.properties;
	for (const key of path.replace(/^\$\./, "").split(".")) {
		const object = typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
		value = Object.hasOwn(object, key) ? object[key] : undefined;
	}
	return value;
}

const text = (value: unknown) => (["string", "number", "boolean"].includes(typeof value) ? String(value) : null);

type Reading = { groups: Record<string, string | null>; micros?: bigint; unique?: string };

/** How an event counts for a meter: null = not at all, "skip" = counted as meterSkipped. */
function readingOf(meter: MeterBody, event: WireEvent): Reading | "skip" | null {
	if (event.event !== meter.eventType) return null;
	for (const [path, wanted] of Object.entries(meter.filter ?? {})) {
		if (!(Array.isArray(wanted) ? wanted : [wanted]).includes(read(event, path) as Scalar)) return null;
	}
	const groups: Record<string, string | null> = {};
	for (const [name, path] of Object.entries(meter.groupBy ?? {})) {
		const value = text(read(event, path));
		groups[name] = value !== null && value.length > 256 ? "(other)" : value;
	}
	if (meter.aggregation === "COUNT") return { groups };
	if (meter.aggregation === "UNIQUE_COUNT") {
		const unique = text(read(event, meter.valueProperty!));
		return unique === null || unique.length > 256 ? "skip" : { groups, unique };
	}
	const micros =
		meter.valueProperty === "usage.quantity"
			? event.usage && microsOf(event.usage.quantity)
			: microsOf(read(event, meter.valueProperty!));
	return micros === null || micros === undefined ? "skip" : { groups, micros };
}

/** The D1 rows the meters make: one per meter, customer, group values and minute with a counted event. */
export function rowCountOf(meters: MeterModel[], taken: Taken[]): number {
	const keys = new Set<string>();
	meters.forEach((m, i) => {
		for (const { event, phase } of taken) {
			const reading = phase >= m.from && phase < m.until ? readingOf(m.body, event) : null;
			if (reading === null || reading === "skip") continue;
			keys.add(
				JSON.stringify([i, event.customerId ?? "", Object.values(reading.groups), event.timestamp - (event.timestamp % MINUTE)]),
			);
		}
	});
	return keys.size;
}

/** Readings skipped over every meter and event: what /v1/metrics reports as meterSkipped. */
export function skippedOf(meters: MeterModel[], taken: Taken[]): number {
	return meters.reduce(
		(n, m) => n + taken.filter((t) => t.phase >= m.from && t.phase < m.until && readingOf(m.body, t.event) === "skip").length,
		0,
	);
}

interface Cell {
	window: number;
	customer: string | null;
	groups: Record<string, string | null>;
	count: bigint;
	sum: bigint;
	min: bigint | null;
	max: bigint | null;
	latest: { at: number; micros: bigint } | null;
	values: Set<string>;
}

function valueOf(aggregation: MeterBody["aggregation"], cell: Cell): string {
	switch (aggregation) {
		case "COUNT":
			return String(cell.count);
		case "SUM":
			return decimal(cell.sum);
		case "AVG": {
			// Rounded half up to the micro-unit (every AVG input here is ≥ 0).
			return decimal((cell.sum * 2n + cell.count) / (2n * cell.count));
		}
		case "MIN":
			return decimal(cell.min!);
		case "MAX":
			return decimal(cell.max!);
		case "LATEST":
			return decimal(cell.latest!.micros);
		case "UNIQUE_COUNT":
			return String(cell.values.size);
	}
}

const compare = (a: string, b: string) => (a === b ? 0 : a < b ? -1 : 1);

/**
 * What GET /v1/meters/:slug/query must answer for `meter` over the events taken, at frozen `now`
 * (the default range is its UTC month).
 */
export function expectedAnswer(meter: MeterModel, taken: Taken[], q: MeterQuery, now: number): QueryAnswer {
	const month = new Date(now);
	const from = q.from ?? Date.UTC(month.getUTCFullYear(), month.getUTCMonth(), 1);
	const to = q.to ?? Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1);
	const zone = q.windowTimeZone ?? "UTC";
	const windows = q.windowSize ? windowsIn(zone, from, to, q.windowSize) : [[from, to] as [number, number]];
	const byCustomer = q.groupBy?.includes("customerId") ?? false;
	const names = (q.groupBy ?? []).filter((name) => name !== "customerId");
	const cells = new Map<string, Cell>();
	for (const { event, phase } of taken) {
		if (phase < meter.from || phase >= meter.until) continue;
		const reading = readingOf(meter.body, event);
		if (reading === null || reading === "skip") continue;
		// Rows are kept per UTC minute: an event counts in the window of its minute.
		const minute = event.timestamp - (event.timestamp % MINUTE);
		const window = windows.findIndex(([start, end]) => start <= minute && minute < end);
		if (window < 0) continue;
		if (q.customerId !== undefined && event.customerId !== q.customerId) continue;
		if (Object.entries(q.filter ?? {}).some(([name, wanted]) => reading.groups[name] !== wanted)) continue;
		const customer = byCustomer ? (event.customerId ?? null) : (q.customerId ?? null);
		const groups = Object.fromEntries(names.map((name) => [name, reading.groups[name]!]));
		const key = JSON.stringify([window, customer, groups]);
		let cell = cells.get(key);
		if (!cell) {
			cell = { window, customer, groups, count: 0n, sum: 0n, min: null, max: null, latest: null, values: new Set() };
			cells.set(key, cell);
		}
		cell.count++;
		if (reading.unique !== undefined) cell.values.add(reading.unique);
		const micros = reading.micros;
		if (micros === undefined) continue;
		cell.sum += micros;
		cell.min = cell.min === null || micros < cell.min ? micros : cell.min;
		cell.max = cell.max === null || micros > cell.max ? micros : cell.max;
		const latest = cell.latest;
		if (!latest || event.timestamp > latest.at || (event.timestamp === latest.at && micros > latest.micros))
			cell.latest = { at: event.timestamp, micros };
	}
	const data = [...cells.values()]
		.sort(
			(a, b) =>
				a.window - b.window ||
				compare(a.customer ?? "", b.customer ?? "") ||
				compare(JSON.stringify(a.groups), JSON.stringify(b.groups)),
		)
		.map((cell) => {
			const value = valueOf(meter.body.aggregation, cell);
			return {
				windowStart: iso(windows[cell.window]![0]),
				windowEnd: iso(windows[cell.window]![1]),
				value: Number(value),
				valueDecimal: value,
				customerId: cell.customer,
				groupBy: cell.groups,
			};
		});
	return {
		meter: meter.body.slug,
		aggregation: meter.body.aggregation,
		from: iso(windows[0]![0]),
		to: iso(windows.at(-1)![1]),
		windowSize: q.windowSize ?? null,
		windowTimeZone: zone,
		data,
	};
}
