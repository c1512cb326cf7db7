// The meter query ledger: ten meters (every aggregation, group-bys, a filter, one on usage.quantity)
// over thousands of seeded events for four customers and none, across days, a month boundary and
// New York's fall-back; some through the real queue, most straight into the aggregator, with
// duplicates. Every answer must equal the model's exactly: pending, flushed and mixed, by every
// window size and zone, customer, group subset and filter, across a late meter and a reused slug.
import { describe, expect, it } from "vitest";
import { mulberry32, type Random } from "../e2e/helpers";
import { call, createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import {
	createMeter,
	d1MeterRows,
	deleteMeter,
	flush,
	HOUR,
	ingestDirect,
	metricsOf,
	postEvents,
	queryMeter,
	untilConsumed,
	type MeterBody,
	type MeterQuery,
	type WireEvent,
} from "./meter-helpers";
import { decimal, expectedAnswer, rowCountOf, skippedOf, takenOf, type MeterModel, type Taken } from "./meter-model";

/** Change it to replay another run; every assertion message names it. */
const SEED = 0x6d657465;
const NOW = Date.UTC(2100, 10, 9, 12);
const START = Date.UTC(2100, 9, 28);
/** Where events cluster: the month's start in Kolkata, UTC and New York, New York's fall-back and the day after. */
const HOT = [
	Date.UTC(2100, 9, 31, 18, 30),
	Date.UTC(2100, 10, 1),
	Date.UTC(2100, 10, 1, 4),
	Date.UTC(2100, 10, 7, 6),
	Date.UTC(2100, 10, 8, 5),
];
const CUSTOMERS = ["acme", "globex", "initech", "umbrella"];
const ALL = { from: START, to: Date.UTC(2100, 10, 10) };

// In 2100, so no alarm the aggregator arms fires by itself: every flush here is asked for.
useFrozenClock(() => freezeClockAt(NOW));

const METERS: MeterBody[] = [
	{
		slug: "tokens",
		eventType: "llm_call",
		aggregation: "SUM",
		valueProperty: "$.tokens",
		groupBy: { model: "model", region: "geo.region" },
		filter: { plan: ["pro", "team"] },
	},
	{ slug: "calls", eventType: "api_call", aggregation: "COUNT", groupBy: { status: "status" } },
	{ slug: "fastest", eventType: "api_call", aggregation: "MIN", valueProperty: "latency_ms" },
	{ slug: "slowest", eventType: "api_call", aggregation: "MAX", valueProperty: "latency_ms", groupBy: { status: "status" } },
	{ slug: "latency", eventType: "api_call", aggregation: "AVG", valueProperty: "latency_ms", groupBy: { status: "status" } },
	{ slug: "balance", eventType: "balance", aggregation: "LATEST", valueProperty: "amount" },
	{ slug: "users", eventType: "api_call", aggregation: "UNIQUE_COUNT", valueProperty: "user", groupBy: { status: "status" } },
	{ slug: "billed", eventType: "llm_call", aggregation: "SUM", valueProperty: "usage.quantity", groupBy: { sku: "usage.sku" } },
];
/** Created after phase 1: it counts phases 2 and 3 only. */
const LATE: MeterBody = { slug: "late_calls", eventType: "llm_call", aggregation: "COUNT", groupBy: { model: "model" } };
/** Takes the slug "calls" after that meter is deleted: it starts fresh. */
const REUSED: MeterBody = {
	slug: "calls",
	eventType: "api_call",
	aggregation: "COUNT",
	groupBy: { status: "status" },
	filter: { status: 500 },
};
const FILTER_VALUES: Record<string, string> = { model: "gpt", region: "eu", status: "500", sku: "input" };

const int = (random: Random, below: number) => Math.floor(random() * below);
const pick = <T>(random: Random, items: readonly T[]): T => items[int(random, items.length)]!;
/** A JSON number with exactly these micro-units. */
const number = (micros: bigint) => Number(decimal(micros));

function timestamp(random: Random): number {
	const roll = random();
	if (roll < 0.04) return pick(random, HOT) - int(random, 2);
	if (roll < 0.6) return pick(random, HOT) + int(random, 12 * HOUR) - 6 * HOUR;
	return START + int(random, NOW - HOUR - START);
}

/** `count` distinct events, ids `<prefix>-0…`; balances of one customer sometimes share an instant. */
function generate(random: Random, count: number, prefix: string): WireEvent[] {
	const balances = new Map<string | undefined, number[]>();
	return Array.from({ length: count }, (_, i): WireEvent => {
		const customerId = random() < 0.85 ? pick(random, CUSTOMERS) : undefined;
		const base = { id: `${prefix}-${i}`, timestamp: timestamp(random), ...(customerId && { customerId }) };
		const roll = random();
		if (roll < 0.45) {
			const properties: Record<string, unknown> = { model: pick(random, ["gpt", "claude", "llama"]) };
			if (random() < 0.95) properties.plan = pick(random, ["free", "pro", "team"]);
			if (random() < 0.85) properties.geo = { region: pick(random, ["eu", "us", "ap"]) };
			const size = random();
			if (size < 0.5) properties.tokens = int(random, 5000);
			else if (size < 0.9) properties.tokens = number(BigInt(int(random, 100_000_000)));
			else if (size < 0.97) properties.tokens = 1 + int(random, 9e9 - 1);
			const usage =
				random() < 0.7 ? { sku: pick(random, ["input", "output"]), quantity: number(BigInt(int(random, 1e9))) } : undefined;
			return { ...base, event: "llm_call", properties, ...(usage && { usage }) };
		}
		if (roll < 0.85) {
			const properties: Record<string, unknown> = { status: pick(random, [200, 200, 201, 404, 500]) };
			const latency = random();
			if (latency < 0.05) properties.latency_ms = "12.5";
			else if (latency < 0.95) properties.latency_ms = number(BigInt(int(random, 2_000_000)) * 1000n);
			properties.user = random() < 0.2 ? int(random, 10) : `u${int(random, 80)}`;
			return { ...base, event: "api_call", properties };
		}
		if (roll < 0.95) {
			const seen = balances.get(customerId) ?? [];
			balances.set(customerId, seen);
			const at = seen.length > 0 && random() < 0.3 ? pick(random, seen) : base.timestamp;
			seen.push(at);
			return {
				...base,
				timestamp: at,
				event: "balance",
				properties: { amount: number(BigInt(int(random, 200_000)) * 10_000n - 1_000_000_000n) },
			};
		}
		return { ...base, event: "page_view", properties: { path: "/" } };
	});
}

/** The phase's sends, shuffled, with resends of earlier events (from any phase) and of its own. */
function sendsOf(random: Random, fresh: WireEvent[], earlier: WireEvent[]): WireEvent[] {
	const sends = [...fresh];
	for (let i = sends.length - 1; i > 0; i--) {
		const j = int(random, i + 1);
		[sends[i], sends[j]] = [sends[j]!, sends[i]!];
	}
	const copies = Math.floor(fresh.length * 0.09);
	for (let i = 0; i < copies; i++) {
		const from = random() < 0.5 && earlier.length > 0 ? earlier : sends;
		sends.splice(int(random, sends.length + 1), 0, pick(random, from));
	}
	return sends;
}

/** Every query the matrix asks of a meter. */
function queriesOf(meter: MeterBody): MeterQuery[] {
	const groups = Object.keys(meter.groupBy ?? {});
	const hours = { from: Date.UTC(2100, 10, 6), to: Date.UTC(2100, 10, 8, 12) };
	const list: MeterQuery[] = [
		{ ...ALL },
		{},
		{ from: Date.UTC(2100, 10, 7, 4), to: Date.UTC(2100, 10, 7, 8), windowSize: "MINUTE" },
		{ ...hours, windowSize: "HOUR" },
		{ ...ALL, windowSize: "DAY" },
		{ from: Date.UTC(2100, 9, 1), to: Date.UTC(2100, 11, 1), windowSize: "MONTH" },
		{ ...ALL, windowSize: "DAY", windowTimeZone: "Asia/Kolkata" },
		{ ...hours, windowSize: "HOUR", windowTimeZone: "Asia/Kolkata" },
		{ ...ALL, windowSize: "MONTH", windowTimeZone: "Asia/Kolkata" },
		{ ...ALL, windowSize: "DAY", windowTimeZone: "America/New_York" },
		{ from: Date.UTC(2100, 10, 7), to: Date.UTC(2100, 10, 7, 12), windowSize: "HOUR", windowTimeZone: "America/New_York" },
		{ ...ALL, windowSize: "MONTH", windowTimeZone: "America/New_York" },
		{ ...ALL, windowSize: "DAY", customerId: "acme" },
		{ ...ALL, customerId: "nobody" },
		{ ...ALL, windowSize: "MONTH", groupBy: ["customerId"] },
		{ ...ALL, windowSize: "DAY", windowTimeZone: "America/New_York", groupBy: ["customerId", ...groups] },
	];
	for (let mask = 1; mask < 1 << groups.length; mask++) {
		list.push({ ...ALL, windowSize: "DAY", groupBy: groups.filter((_, i) => mask & (1 << i)) });
	}
	for (const name of groups) list.push({ ...ALL, windowSize: "DAY", filter: { [name]: FILTER_VALUES[name]! } });
	if (groups.length === 2) {
		list.push({ ...hours, windowSize: "HOUR", groupBy: [groups[1]!, "customerId", groups[0]!] });
		list.push({
			...ALL,
			windowSize: "MONTH",
			customerId: "globex",
			groupBy: [groups[1]!],
			filter: { [groups[0]!]: FILTER_VALUES[groups[0]!]! },
		});
	}
	return list;
}

describe("the meter query ledger", () => {
	const random = mulberry32(SEED);
	let tenant: TestTenant;
	/** What each slug resolves to now, and every meter there ever was. */
	const bySlug = new Map<string, MeterModel>();
	const everMeter: MeterModel[] = [];
	const sent: Taken[] = [];
	let phase = 0;

	function define(body: MeterBody): Promise<void> {
		const model = { body, from: phase + 1, until: Infinity };
		bySlug.set(body.slug, model);
		everMeter.push(model);
		return createMeter(tenant, body);
	}

	/** One ingest phase: `viaQueue` of the sends POSTed to /v1/events, the rest ingested directly. */
	async function runPhase(count: number, viaQueue: number): Promise<void> {
		phase++;
		const sends = sendsOf(
			random,
			generate(random, count, `p${phase}`),
			sent.map((s) => s.event),
		);
		const queued = sends.slice(0, viaQueue);
		for (let i = 0; i < queued.length; i += 200) await postEvents(tenant, queued.slice(i, i + 200));
		await ingestDirect(tenant, sends.slice(viaQueue));
		sent.push(...sends.map((event) => ({ event, phase })));
		await untilConsumed(tenant, sent.length);
	}

	/** Every query of every meter equals the model's answer. */
	async function expectLedger(stage: string): Promise<void> {
		const taken = takenOf(sent);
		const asks = [...bySlug.values()].flatMap((meter) => queriesOf(meter.body).map((q) => ({ meter, q })));
		for (let i = 0; i < asks.length; i += 8) {
			await Promise.all(
				asks.slice(i, i + 8).map(async ({ meter, q }) => {
					const answer = await queryMeter(tenant, meter.body.slug, q);
					expect(answer, `seed ${SEED}, ${stage}: ${meter.body.slug} ${JSON.stringify(q)}`).toEqual(
						expectedAnswer(meter, taken, q, NOW),
					);
				}),
			);
		}
	}

	it("answers from the aggregator's pending rows before any flush", { timeout: 120_000 }, async () => {
		tenant = await createTenant();
		for (const body of METERS) await define(body);
		await runPhase(1600, 400);
		expect(await d1MeterRows(tenant)).toBe(0);
		await expectLedger("pending");
	});

	it("answers the same from D1 once flushed", { timeout: 120_000 }, async () => {
		expect(await flush(tenant)).toBeGreaterThan(0);
		expect(await d1MeterRows(tenant)).toBe(rowCountOf(everMeter, takenOf(sent)));
		await expectLedger("flushed");
	});

	it(
		"merges D1's rows with pending ones, and a meter created later counts only the events ingested after it",
		{ timeout: 120_000 },
		async () => {
			await define(LATE);
			await runPhase(1200, 200);
			const taken = takenOf(sent);
			const late = (await queryMeter(tenant, "late_calls", ALL)).data;
			const laterCalls = taken.filter((t) => t.phase === 2 && t.event.event === "llm_call").length;
			expect(late.map((point) => point.value)).toEqual([laterCalls]);
			expect(laterCalls).toBeLessThan(taken.filter((t) => t.event.event === "llm_call").length);
			await expectLedger("mixed");
		},
	);

	it("keeps a deleted meter's history readable by its slug; a new meter with the slug starts fresh", { timeout: 120_000 }, async () => {
		expect(await flush(tenant)).toBeGreaterThan(0);
		await deleteMeter(tenant, "calls");
		bySlug.get("calls")!.until = phase + 1;
		expect((await call("/v1/meters/calls", { key: tenant.readKey })).status).toBe(404);
		await expectLedger("deleted");

		await define(REUSED);
		await runPhase(300, 0);
		const reused = await queryMeter(tenant, "calls", { ...ALL, groupBy: ["status"] });
		const fresh = takenOf(sent).filter((t) => t.phase === 3 && t.event.event === "api_call" && t.event.properties!.status === 500);
		expect(reused.data.map((point) => [point.groupBy, point.value])).toEqual([[{ status: "500" }, fresh.length]]);
		await expectLedger("reused, mixed");
	});

	it("ends with every reading in D1 once, and the counters exact", { timeout: 120_000 }, async () => {
		expect(await flush(tenant)).toBeGreaterThan(0);
		const taken = takenOf(sent);
		expect(await d1MeterRows(tenant)).toBe(rowCountOf(everMeter, taken));
		await expectLedger("final");
		expect(await metricsOf(tenant)).toMatchObject({
			consumed: sent.length,
			duplicatesDropped: sent.length - taken.length,
			aggregated: taken.length,
			meterSkipped: skippedOf(everMeter, taken),
			meterGroupsFolded: 0,
		});
		expect(sent.length - taken.length, `seed ${SEED}: duplicates`).toBeGreaterThan(200);
	});
});
