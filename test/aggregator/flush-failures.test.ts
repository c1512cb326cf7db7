// A flush that fails: D1 down keeps the sealed deltas and retries with backoff (2 s, 4 s, 8 s),
// events ingested meanwhile kept apart; a crash between D1's commit and the local clear is never
// counted twice.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { advanceClock, useFrozenClock } from "../helpers";
import {
	aggregatorWith,
	COMPACT_AT,
	countOnly,
	crashAfterD1Commit,
	d1Events,
	d1Flushes,
	d1Usage,
	EVENT_HOUR,
	EVENT_MINUTE,
	expectMixedSliceFlushedOnce,
	failD1,
	flushMeta,
	freezeClock,
	FROZEN_AT,
	incarnation,
	makeEvent,
	MIXED_SLICE_ROWS,
	mixedEvents,
	mixedSlice,
	mixedUsage,
	pendingEvents,
	pendingRowCount,
	pendingUsage,
	recordFlushes,
	settle,
} from "./helpers";

useFrozenClock(freezeClock);

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

		expect(await stub.flush()).toBe(MIXED_SLICE_ROWS);

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
		// Batch 1: 1 usage + 1 event + 12 series rows (api_call's 4 dimensions × minute, hour, day);
		// batch 2: 1 usage + 2 event + 24 series rows (api_call's and page_view's).
		expect(await stub.flush()).toBe(41);

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
			{ flush_id: `${inc}:1`, rows: 14 },
			{ flush_id: `${inc}:2`, rows: 27 },
		]);
		expect(await d1Flushes(tenant)).toEqual([{ flush_id: `${inc}:2`, rows: 27 }]);
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
