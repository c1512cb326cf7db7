// ingest()'s event-id dedupe: an id repeated within a slice, across slices and after a flush; the
// new ids kept in one row per hour of event time; an evicted partition reloaded; a fingerprint
// collision never taken for a duplicate.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { uniqueTenantId, useFrozenClock } from "../helpers";
import { aggregator, AT, countOnly, d1Events, d1Usage, EVENT_HOUR, freezeClock, makeEvent, usage } from "./helpers";
import { IdMemory } from "../../src/aggregator/dedupe";
import { fingerprintOf } from "../../src/aggregator/id-index";
import type { Store } from "../../src/aggregator/state";

const HOUR = 3_600_000;

useFrozenClock(freezeClock);

describe("dedupe", () => {
	it("drops an id repeated within one slice", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const a = makeEvent({ usage: usage(1_000_000) });
		const b = makeEvent({ usage: usage(1_000_000) });

		expect(await stub.ingest(tenant, [a, a, b, a])).toEqual({ accepted: 2, duplicates: 2, refused: [] });
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([countOnly("api_call", "2100-03-10T13:59:00.000Z", 2)]);
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "2000000", events: 2 },
		]);
	});

	it("drops an id already seen in an earlier slice", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const [a, b, c] = [makeEvent({ usage: usage(1) }), makeEvent({ usage: usage(10) }), makeEvent({ usage: usage(100) })];

		expect(await stub.ingest(tenant, [a, b])).toEqual({ accepted: 2, duplicates: 0, refused: [] });
		expect(await stub.ingest(tenant, [b, c, a])).toEqual({ accepted: 1, duplicates: 2, refused: [] });
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([countOnly("api_call", "2100-03-10T13:59:00.000Z", 3)]);
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "111", events: 3 },
		]);
	});

	it("drops an id redelivered after its batch was flushed", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const a = makeEvent({ usage: usage(5) });

		expect(await stub.ingest(tenant, [a])).toEqual({ accepted: 1, duplicates: 0, refused: [] });
		// 1 usage + 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await stub.flush()).toBe(14);
		expect(await stub.ingest(tenant, [a])).toEqual({ accepted: 0, duplicates: 1, refused: [] });
		expect(await stub.flush()).toBe(0);

		expect(await d1Usage(tenant)).toEqual([{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "5", events: 1 }]);
		expect(await d1Events(tenant)).toEqual([countOnly("api_call", "2100-03-10T13:59:00.000Z", 1)]);
	});

	it("remembers the new ids of one ingest in one row per hour of event time", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);

		await stub.ingest(tenant, [
			makeEvent({ id: "x" }),
			makeEvent({ id: "y", timestamp: AT["14:00:00.000"] }),
			makeEvent({ id: "x" }),
			makeEvent({ id: "w" }),
		]);

		await runInDurableObject(stub, (_instance, state) => {
			expect(state.storage.sql.exec("SELECT hour, ids FROM seen_chunks ORDER BY hour").toArray()).toEqual([
				{ hour: Date.parse(EVENT_HOUR) / HOUR, ids: '["x","w"]' },
				{ hour: Date.parse(EVENT_HOUR) / HOUR + 1, ids: '["y"]' },
			]);
		});
	});

	it("writes a handful of SQLite rows for a thousand new events, not one per event", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		// The event name and SKU are registered by the first ingest, once.
		await stub.ingest(tenant, [makeEvent({ usage: usage(1) })]);
		const before = (await stub.operations()).sqlite_rows_written;

		await stub.ingest(
			tenant,
			Array.from({ length: 1000 }, () => makeEvent({ usage: usage(1) })),
		);

		// One id chunk, one event rollup upsert, one usage rollup upsert, the state row, and the
		// packed chunk of the slice's series rows (one row: its table has no index to write).
		expect((await stub.operations()).sqlite_rows_written - before).toBe(5);
	});

	it("finds a duplicate in a partition that was evicted from memory, by reloading it", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const early = makeEvent({ id: "early", timestamp: AT["13:58:00.000"] - 2 * HOUR });
		await stub.ingest(tenant, [early]);
		await runInDurableObject(stub, (instance) => {
			const inner = instance as unknown as { store: Store; ids: IdMemory };
			// A budget of one id: each ingest in another hour evicts the partitions it did not touch.
			inner.ids = new IdMemory(inner.store, 1);
		});
		expect(await stub.ingest(tenant, [makeEvent({ id: "late", timestamp: AT["14:01:30.000"] })])).toEqual({
			accepted: 1,
			duplicates: 0,
			refused: [],
		});
		const memory = await runInDurableObject(stub, (instance) => (instance as unknown as { ids: IdMemory }).ids.memory);
		// The early hour went; the late hour and the empty neighbour it was checked against stay.
		expect(memory).toEqual({ ids: 1, bytes: 16384, partitions: 2 });

		expect(await stub.ingest(tenant, [early, makeEvent({ id: "late", timestamp: AT["14:01:30.000"] })])).toEqual({
			accepted: 0,
			duplicates: 2,
			refused: [],
		});
	});

	it("never takes a new id for a duplicate when its fingerprint collides with a remembered one", async () => {
		const [a, b] = fingerprintCollision();
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);

		expect(await stub.ingest(tenant, [makeEvent({ id: a })])).toEqual({ accepted: 1, duplicates: 0, refused: [] });
		expect(await stub.ingest(tenant, [makeEvent({ id: b }), makeEvent({ id: a })])).toEqual({
			accepted: 1,
			duplicates: 1,
			refused: [],
		});
		expect(await stub.ingest(tenant, [makeEvent({ id: b })])).toEqual({ accepted: 0, duplicates: 1, refused: [] });
	});
});

/** Two distinct ids with the same 32-bit fingerprint (a birthday search: about 2^16 tries). */
function fingerprintCollision(): [string, string] {
	const seen = new Map<number, string>();
	for (let i = 0; ; i++) {
		const id = `collide-${i}`;
		const fingerprint = fingerprintOf(id);
		const other = seen.get(fingerprint);
		if (other !== undefined) return [other, id];
		seen.set(fingerprint, id);
	}
}
