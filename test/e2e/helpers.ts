// The end-to-end test's model: a seeded event generator, the send plan with duplicates, and the
// ledger every report must equal, computed independently of src/ with BigInt micro-units.
import { mulberry32 } from "../helpers";

export { mulberry32 };

export type Random = () => number;
const int = (random: Random, below: number) => Math.floor(random() * below);
const pick = <T>(random: Random, items: readonly T[]): T => items[int(random, items.length)]!;

/** An event as the app POSTs it. */
export interface WireEvent {
	id: string;
	event: string;
	timestamp: number | string;
	usage?: { sku: string; quantity: number; unit?: string };
	performance?: { duration?: number; statusCode?: number };
}

/** What the event must count for. */
export interface TrueEvent {
	ms: number;
	event: string;
	usage?: { sku: string; unit: string; micros: bigint };
	duration?: number;
	statusCode?: number;
}

export interface GeneratedEvent {
	wire: WireEvent;
	truth: TrueEvent;
}

const EVENT_NAMES = ["api_call", "page_view", "checkout", "signup"] as const;
/** [sku, unit]: the same sku under two units are two series; an omitted unit defaults to "unit". */
const METERS = [
	["tokens", "token"],
	["tokens", "kilo_token"],
	["storage", "gb_hour"],
	["compute", "vcpu_ms"],
	["requests", undefined],
] as const;
const STATUS_CODES = [200, 200, 200, 201, 204, 301, 404, 429, 499, 500, 502, 503, 599] as const;

/** Integer micro-units as an exact decimal: 1500000n → "1.5". */
export function formatMicros(micros: bigint): string {
	const whole = micros / 1_000_000n;
	const fraction = (micros % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "");
	return fraction ? `${whole}.${fraction}` : `${whole}`;
}

/** Quantities of every shape: fractions only, up to 6 fraction digits, whole numbers, zero. */
function randomMicros(random: Random): bigint {
	const roll = random();
	if (roll < 0.02) return 0n;
	if (roll < 0.4) return BigInt(1 + int(random, 999_999)); // 0.000001 … 0.999999
	if (roll < 0.8) return BigInt(int(random, 100_000_000)); // < 100, 6 fraction digits
	if (roll < 0.93) return BigInt(int(random, 1000)) * 1_000_000n; // whole numbers
	return BigInt(int(random, 10_000_000_000)); // < 10000, 6 fraction digits
}

/**
 * `count` distinct events with ids `evt-0…`, timestamps in [start, start + spanMs). Some carry a
 * usage meter, some a duration (in quarter milliseconds, so any summation order is exact) and/or a
 * status code; a quarter send an ISO timestamp instead of epoch milliseconds.
 */
export function generateEvents(random: Random, count: number, start: number, spanMs: number): GeneratedEvent[] {
	return Array.from({ length: count }, (_, i) => {
		const ms = start + int(random, spanMs);
		const event = pick(random, EVENT_NAMES);
		const wire: WireEvent = { id: `evt-${i}`, event, timestamp: random() < 0.25 ? new Date(ms).toISOString() : ms };
		const truth: TrueEvent = { ms, event };
		if (random() < 0.75) {
			const [sku, unit] = pick(random, METERS);
			const micros = randomMicros(random);
			const quantity = Number(formatMicros(micros));
			if (String(quantity) !== formatMicros(micros))
				throw new Error(`quantity ${quantity} does not print as ${formatMicros(micros)}`);
			wire.usage = unit === undefined ? { sku, quantity } : { sku, quantity, unit };
			truth.usage = { sku, unit: unit ?? "unit", micros };
		}
		const roll = random();
		if (roll < 0.6) {
			const performance: NonNullable<WireEvent["performance"]> = {};
			if (roll < 0.45) performance.duration = truth.duration = int(random, 12_000) / 4;
			if (roll > 0.15) performance.statusCode = truth.statusCode = pick(random, STATUS_CODES);
			wire.performance = performance;
		}
		return { wire, truth };
	});
}

/**
 * Request bodies that send every event at least once, in shuffled order, plus identical
 * duplicates: some resent in a later request (a client retry), some repeated within a request.
 */
export function sendPlan(random: Random, events: GeneratedEvent[]): { batches: WireEvent[][]; duplicates: number } {
	const order = events.map((event) => event.wire);
	for (let i = order.length - 1; i > 0; i--) {
		const j = int(random, i + 1);
		[order[i], order[j]] = [order[j]!, order[i]!];
	}
	const batches: WireEvent[][] = [];
	const sent: WireEvent[] = [];
	let next = 0;
	let duplicates = 0;
	while (next < order.length) {
		const size = 120 + int(random, 120);
		const batch: WireEvent[] = [];
		while (batch.length < size && next < order.length) {
			const roll = random();
			if (roll < 0.08 && sent.length > 0) batch.push(pick(random, sent));
			else if (roll < 0.13 && batch.length > 0) batch.push(pick(random, batch));
			else {
				batch.push(order[next++]!);
				continue;
			}
			duplicates++;
		}
		batches.push(batch);
		sent.push(...batch);
	}
	return { batches, duplicates };
}

export type Granularity = "minute" | "hour" | "day" | "month";

/** The ISO start of the UTC bucket holding ms. */
export function bucketOf(ms: number, granularity: Granularity): string {
	const d = new Date(ms);
	const [y, mo, day, h, mi] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes()];
	if (granularity === "month") return new Date(Date.UTC(y, mo, 1)).toISOString();
	if (granularity === "day") return new Date(Date.UTC(y, mo, day)).toISOString();
	if (granularity === "hour") return new Date(Date.UTC(y, mo, day, h)).toISOString();
	return new Date(Date.UTC(y, mo, day, h, mi)).toISOString();
}

/** Plain code-unit order, as SQLite's BINARY collation orders ASCII text. */
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface UsageItem {
	sku: string;
	unit: string;
	period: string;
	quantity: number;
	/** The exact sum, as decimal text. */
	quantityDecimal: string;
	events: number;
}

export interface LedgerUsage {
	items: UsageItem[];
	/** The same rows with exact decimal quantities, as the CSV report writes them. */
	csv: string;
}

export function expectedUsage(events: TrueEvent[], granularity: Granularity): LedgerUsage {
	const rows = new Map<string, { sku: string; unit: string; period: string; micros: bigint; events: number }>();
	for (const event of events) {
		if (!event.usage) continue;
		const { sku, unit, micros } = event.usage;
		const period = bucketOf(event.ms, granularity);
		const key = `${period}\u0000${sku}\u0000${unit}`;
		const row = rows.get(key) ?? { sku, unit, period, micros: 0n, events: 0 };
		row.micros += micros;
		row.events++;
		rows.set(key, row);
	}
	const sorted = [...rows.values()].sort((a, b) => byText(a.period, b.period) || byText(a.sku, b.sku) || byText(a.unit, b.unit));
	return {
		items: sorted.map((row) => ({
			sku: row.sku,
			unit: row.unit,
			period: row.period,
			quantity: Number(formatMicros(row.micros)),
			quantityDecimal: formatMicros(row.micros),
			events: row.events,
		})),
		csv: [
			"period,sku,unit,quantity,events,adjustment_for",
			...sorted.map((row) => `${row.period},${row.sku},${row.unit},${formatMicros(row.micros)},${row.events},`),
		]
			.map((line) => `${line}\r\n`)
			.join(""),
	};
}

export interface StatsItem {
	event: string;
	period: string;
	count: number;
	errors: number;
	duration: { count: number; sum: number; min: number | null; max: number | null };
}

export function expectedStats(events: TrueEvent[], granularity: Granularity): StatsItem[] {
	const rows = new Map<string, StatsItem>();
	for (const event of events) {
		const period = bucketOf(event.ms, granularity);
		const key = `${period}\u0000${event.event}`;
		let row = rows.get(key);
		if (!row)
			rows.set(
				key,
				(row = { event: event.event, period, count: 0, errors: 0, duration: { count: 0, sum: 0, min: null, max: null } }),
			);
		row.count++;
		if (event.statusCode !== undefined && event.statusCode >= 500) row.errors++;
		if (event.duration !== undefined) {
			const d = row.duration;
			d.count++;
			d.sum += event.duration;
			d.min = d.min === null ? event.duration : Math.min(d.min, event.duration);
			d.max = d.max === null ? event.duration : Math.max(d.max, event.duration);
		}
	}
	return [...rows.values()].sort((a, b) => byText(a.period, b.period) || byText(a.event, b.event));
}
