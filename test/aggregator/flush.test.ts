// Flushing to D1: one ledger-guarded batch that clears the local deltas once D1 commits, nothing
// written when nothing is pending, big flushes split, and the backoff a failed flush waits.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { RETRY_POLICIES } from "../../src/aggregator/state";
import { backoffMs } from "../../src/shared/backoff";
import { uniqueTenantId, useFrozenClock } from "../helpers";
import {
	aggregator,
	aggregatorWith,
	AT,
	countOnly,
	d1Events,
	d1Flushes,
	d1Rows,
	EVENT_MINUTE,
	expectMixedSliceFlushedOnce,
	freezeClock,
	incarnation,
	internals,
	makeEvent,
	MIXED_SLICE_ROWS,
	mixedSlice,
	recordFlushes,
} from "./helpers";

const FLUSH_BACKOFF = RETRY_POLICIES.flush;

useFrozenClock(freezeClock);

describe("a successful flush", () => {
	it("writes the rollups and a ledger row in one D1 batch, after one batch of reads, then clears the local deltas", async () => {
		const { tenant, stub } = await aggregatorWith(mixedSlice());

		await runInDurableObject(stub, async (instance) => {
			const batch = vi.spyOn(internals(instance).env.DB, "batch");
			expect(await instance.flush()).toBe(MIXED_SLICE_ROWS);
			// The series are packed (their sketches merge in JavaScript), so a first batch only reads:
			// the ledger check and the stored series rows of the flush's keys. The second writes it all:
			// usage, events and series, then the ledger row and the pruning of older ones.
			const verbs = batch.mock.calls.map(([statements]) =>
				statements.map((statement) => (statement as unknown as { statement: string }).statement.trimStart().split(/\s/)[0]),
			);
			expect(verbs).toEqual([
				["SELECT", "SELECT"],
				["INSERT", "INSERT", "INSERT", "INSERT", "DELETE"],
			]);
		});

		await expectMixedSliceFlushedOnce(tenant);
	});

	it("returns 0 and writes nothing when no deltas are pending", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		expect(await stub.flush()).toBe(0);
		expect(await d1Flushes(tenant)).toEqual([]);

		await stub.ingest(tenant, [makeEvent()]);
		// 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await stub.flush()).toBe(13);
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
		const sent = await runInDurableObject(stub, (instance) => recordFlushes(instance));

		// 2001 event rows + 16008 series rows: 4 dimensions for each of 2001 (name, minute), 1001 (name,
		// hour: 1000 names in 13:00, event-0000 in 14:00) and 1000 (name, day) pairs.
		expect(await stub.flush()).toBe(18009);

		const inc = await runInDurableObject(stub, (_instance, state) => incarnation(state));
		// Flush 1 carried 2000 event rows and the slice's one packed chunk (all 16008 series rows); flush
		// 2, the last event row, deleted its ledger row, which no retry can need any more.
		expect(sent.map((flush) => flush.rows)).toEqual([2000 + 16008, 1]);
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
