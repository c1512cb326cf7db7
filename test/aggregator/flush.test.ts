// Flushing to D1: one ledger-guarded batch, local deltas kept until D1 commits, retries with backoff, no double counting.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { RETRY_POLICIES } from "../../src/aggregator/state";

const FLUSH_BACKOFF = RETRY_POLICIES.flush;
import { backoffMs } from "../../src/shared/backoff";
import type { QueuedEvent } from "../../src/event/model";
import { uniqueTenantId } from "../helpers/api";
import { advanceClock, useFrozenClock } from "../helpers/clock";
import {
	aggregator,
	aggregatorWith,
	AT,
	countOnly,
	crashAfterD1Commit,
	d1Events,
	d1Flushes,
	d1Usage,
	COMPACT_AT,
	EVENT_HOUR,
	EVENT_MINUTE,
	d1Rows,
	failD1,
	flushMeta,
	freezeClock,
	FROZEN_AT,
	incarnation,
	internals,
	makeEvent,
	pendingEvents,
	pendingRowCount,
	pendingUsage,
	recordFlushes,
	settle,
} from "./fixtures";

useFrozenClock(freezeClock);

/** Two usage rows and two event rows once rolled up. */
function mixedSlice(): QueuedEvent[] {
	return [
		makeEvent({ usage: { sku: "tokens", unit: "token", micros: 1_000_000 }, performance: { duration: 10, statusCode: 200 } }),
		makeEvent({ usage: { sku: "tokens", unit: "token", micros: 500_000 }, performance: { duration: 20, statusCode: 500 } }),
		makeEvent({ event: "page_view", usage: { sku: "storage", unit: "GB", micros: 2_500_000 } }),
	];
}

const mixedUsage = [
	{ sku: "storage", unit: "GB", hour: EVENT_HOUR, micros: "2500000", events: 1 },
	{ sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "1500000", events: 2 },
];
const mixedEvents = [
	{
		event: "api_call",
		minute: EVENT_MINUTE,
		count: 2,
		errors: 1,
		duration_count: 2,
		duration_sum: 30,
		duration_min: 10,
		duration_max: 20,
	},
	countOnly("page_view", EVENT_MINUTE, 1),
];

/** D1 holds the mixed slice once, from the incarnation's first flush, and the aggregator holds nothing. */
async function expectMixedSliceFlushedOnce(tenant: string): Promise<void> {
	expect(await d1Usage(tenant)).toEqual(mixedUsage);
	expect(await d1Events(tenant)).toEqual(mixedEvents);
	const inc = await runInDurableObject(aggregator(tenant), (_instance, state) => {
		expect(pendingRowCount(state)).toBe(0);
		expect(flushMeta(state)).toEqual({});
		return incarnation(state);
	});
	expect(await d1Flushes(tenant)).toEqual([{ flush_id: `${inc}:1`, rows: 4 }]);
}

describe("a successful flush", () => {
	it("writes the rollups and a ledger row in one D1 batch, then clears the local deltas", async () => {
		const { tenant, stub } = await aggregatorWith(mixedSlice());

		await runInDurableObject(stub, async (instance) => {
			const batch = vi.spyOn(internals(instance).env.DB, "batch");
			expect(await instance.flush()).toBe(4);
			expect(batch).toHaveBeenCalledTimes(1);
		});

		await expectMixedSliceFlushedOnce(tenant);
	});

	it("returns 0 and writes nothing when no deltas are pending", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		expect(await stub.flush()).toBe(0);
		expect(await d1Flushes(tenant)).toEqual([]);

		await stub.ingest(tenant, [makeEvent()]);
		expect(await stub.flush()).toBe(1);
		expect(await stub.flush()).toBe(0);
		expect(await d1Flushes(tenant)).toHaveLength(1);
		expect(await d1Events(tenant)).toEqual([countOnly("api_call", EVENT_MINUTE, 1)]);
	});

	it("splits more than 2000 pending rows into several ledger-guarded flushes, keeping only the newest ledger row", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		// 2001 rows: 1000 event names (the default cap) over two minutes, and one more.
		const events = Array.from({ length: 2001 }, (_, i) =>
			makeEvent({
				event: `event-${String(i % 1000).padStart(4, "0")}`,
				timestamp: AT["13:58:00.000"] + Math.floor(i / 1000) * 60_000,
			}),
		);
		await stub.ingest(tenant, events);

		expect(await stub.flush()).toBe(2001);

		const inc = await runInDurableObject(stub, (_instance, state) => incarnation(state));
		// Flush 1 carried 2000 rows; flush 2 deleted its ledger row, which no retry can need any more.
		expect(await d1Flushes(tenant)).toEqual([{ flush_id: `${inc}:2`, rows: 1 }]);
		const counts = await d1Rows<{ minute: string; rows: number; events: number }>(
			"SELECT minute, count(*) AS rows, sum(count) AS events FROM event_rollups WHERE tenant = ?1 GROUP BY minute ORDER BY minute",
			tenant,
		);
		expect(counts).toEqual([
			{ minute: "2100-03-10T13:58:00.000Z", rows: 1000, events: 1000 },
			{ minute: "2100-03-10T13:59:00.000Z", rows: 1000, events: 1000 },
			{ minute: "2100-03-10T14:00:00.000Z", rows: 1, events: 1 },
		]);
	});
});

describe("a D1 failure", () => {
	it("keeps the sealed deltas, rejects flush() and records a backoff; the retry writes them once", async () => {
		const { tenant, stub } = await aggregatorWith(mixedSlice());
		const d1 = await runInDurableObject(stub, (instance) => failD1(instance, 1));

		await expect(settle(stub.flush())).rejects.toThrow("D1 unavailable");

		await runInDurableObject(stub, (_instance, state) => {
			expect(pendingUsage(state)).toEqual(mixedUsage.map((row) => ({ batch: 1, ...row })));
			expect(pendingEvents(state)).toEqual(mixedEvents.map((row) => ({ batch: 1, ...row })));
			expect(flushMeta(state)).toEqual({ sealed_batch: "1", flush_failures: "1", retry_at: String(FROZEN_AT + 2_000) });
		});
		expect(await d1Usage(tenant)).toEqual([]);
		expect(await d1Events(tenant)).toEqual([]);
		expect(await d1Flushes(tenant)).toEqual([]);

		expect(await stub.flush()).toBe(4);

		expect(d1.calls).toBe(2);
		await expectMixedSliceFlushedOnce(tenant);
	});

	it("backs off 2 s, 4 s, 8 s across failing alarms and clears the backoff on success", async () => {
		const { tenant, stub } = await aggregatorWith(mixedSlice());
		await runInDurableObject(stub, (instance) => failD1(instance, 3));

		let now = FROZEN_AT;
		for (const [failures, backoff] of [
			[1, 2_000],
			[2, 4_000],
			[3, 8_000],
		] as const) {
			expect(await runDurableObjectAlarm(stub)).toBe(true);
			await runInDurableObject(stub, async (_instance, state) => {
				expect(flushMeta(state)).toEqual({ sealed_batch: "1", flush_failures: String(failures), retry_at: String(now + backoff) });
				expect(await state.storage.getAlarm()).toBe(now + backoff);
				expect(pendingRowCount(state)).toBe(4);
			});
			expect(await d1Flushes(tenant)).toEqual([]);
			now = advanceClock(backoff);
		}

		expect(await runDurableObjectAlarm(stub)).toBe(true);

		await expectMixedSliceFlushedOnce(tenant);
		// Only the dedupe window is left to look after.
		expect(await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm())).toBe(COMPACT_AT);
	});

	it("keeps events ingested while a sealed batch fails apart, and flushes both exactly", async () => {
		const { tenant, stub } = await aggregatorWith([
			makeEvent({ usage: { sku: "tokens", unit: "token", micros: 1_500_000 }, performance: { duration: 10 } }),
		]);
		await runInDurableObject(stub, (instance) => failD1(instance, 1));
		await expect(settle(stub.flush())).rejects.toThrow("D1 unavailable");

		await stub.ingest(tenant, [
			makeEvent({ usage: { sku: "tokens", unit: "token", micros: 2_500_000 }, performance: { duration: 20 } }),
			makeEvent({ event: "page_view" }),
		]);

		await runInDurableObject(stub, (_instance, state) => {
			expect(pendingUsage(state)).toEqual([
				{ batch: 0, sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "2500000", events: 1 },
				{ batch: 1, sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "1500000", events: 1 },
			]);
			expect(pendingEvents(state)).toEqual([
				{
					batch: 0,
					event: "api_call",
					minute: EVENT_MINUTE,
					count: 1,
					errors: 0,
					duration_count: 1,
					duration_sum: 20,
					duration_min: 20,
					duration_max: 20,
				},
				{ batch: 0, ...countOnly("page_view", EVENT_MINUTE, 1) },
				{
					batch: 1,
					event: "api_call",
					minute: EVENT_MINUTE,
					count: 1,
					errors: 0,
					duration_count: 1,
					duration_sum: 10,
					duration_min: 10,
					duration_max: 10,
				},
			]);
		});

		const sent = await runInDurableObject(stub, (instance) => recordFlushes(instance));
		expect(await stub.flush()).toBe(5);

		expect(await d1Usage(tenant)).toEqual([{ sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "4000000", events: 2 }]);
		expect(await d1Events(tenant)).toEqual([
			{
				event: "api_call",
				minute: EVENT_MINUTE,
				count: 2,
				errors: 0,
				duration_count: 2,
				duration_sum: 30,
				duration_min: 10,
				duration_max: 20,
			},
			countOnly("page_view", EVENT_MINUTE, 1),
		]);
		const inc = await runInDurableObject(stub, (_instance, state) => incarnation(state));
		// The sealed batch goes first, as it was sealed; the new deltas get a batch of their own.
		expect(sent).toEqual([
			{ flush_id: `${inc}:1`, rows: 2 },
			{ flush_id: `${inc}:2`, rows: 3 },
		]);
		expect(await d1Flushes(tenant)).toEqual([{ flush_id: `${inc}:2`, rows: 3 }]);
	});
});

describe("a crash between D1's commit and the local clear", () => {
	it.each(["flush", "alarm"] as const)("does not double count when the %s runs again", async (retry) => {
		const { tenant, stub } = await aggregatorWith(mixedSlice());
		const d1 = await runInDurableObject(stub, (instance) => crashAfterD1Commit(instance, 1));
		const attempt = async () => {
			if (retry === "flush") await stub.flush();
			else {
				// The retry alarm fires when the backoff ends; before then it leaves the batch sealed.
				vi.setSystemTime(FROZEN_AT + 1_999);
				expect(await runDurableObjectAlarm(stub)).toBe(true);
				expect(d1.applied).toEqual([true]);
				vi.setSystemTime(FROZEN_AT + 2_000);
				expect(await runDurableObjectAlarm(stub)).toBe(true);
			}
		};

		if (retry === "flush") await expect(settle(stub.flush())).rejects.toThrow("crashed after D1 commit");
		else expect(await runDurableObjectAlarm(stub)).toBe(true);

		// D1 has the batch; the local copy is still sealed because the clear never ran.
		expect(await d1Usage(tenant)).toEqual(mixedUsage);
		expect(await d1Events(tenant)).toEqual(mixedEvents);
		await runInDurableObject(stub, (_instance, state) => {
			expect(pendingRowCount(state)).toBe(4);
			expect(flushMeta(state)).toEqual({ sealed_batch: "1", flush_failures: "1", retry_at: String(FROZEN_AT + 2_000) });
		});

		await attempt();

		expect(d1.applied).toEqual([true, false]);
		await expectMixedSliceFlushedOnce(tenant);
	});

	it("flushes events ingested after the crash exactly once too", async () => {
		const { tenant, stub } = await aggregatorWith(mixedSlice());
		const d1 = await runInDurableObject(stub, (instance) => crashAfterD1Commit(instance, 1));
		await expect(settle(stub.flush())).rejects.toThrow("crashed after D1 commit");

		await stub.ingest(tenant, mixedSlice());
		await stub.flush();

		expect(d1.applied).toEqual([true, false, true]);
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "storage", unit: "GB", hour: EVENT_HOUR, micros: "5000000", events: 2 },
			{ sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "3000000", events: 4 },
		]);
		expect(await d1Events(tenant)).toEqual([
			{
				event: "api_call",
				minute: EVENT_MINUTE,
				count: 4,
				errors: 2,
				duration_count: 4,
				duration_sum: 60,
				duration_min: 10,
				duration_max: 20,
			},
			countOnly("page_view", EVENT_MINUTE, 2),
		]);
	});
});

describe("the D1 flush backoff", () => {
	it.each([
		[1, 2_000],
		[2, 4_000],
		[3, 8_000],
		[4, 16_000],
		[7, 128_000],
		[8, 256_000],
		[9, 300_000],
		[10, 300_000],
		[1_000, 300_000],
	])("waits %i failures → %i ms", (failures, expected) => {
		expect(backoffMs(failures, FLUSH_BACKOFF)).toBe(expected);
	});
});
