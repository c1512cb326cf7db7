// ingest(): event-id dedupe, per-minute counters, per-hour usage sums, and exact integer quantities.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { uniqueTenantId } from "../helpers/api";
import { useFrozenClock } from "../helpers/clock";
import { IdMemory } from "../../src/aggregator/dedupe";
import { fingerprintOf } from "../../src/aggregator/id-index";
import type { Store } from "../../src/aggregator/state";
import { aggregator, AT, countOnly, d1Events, d1Usage, EVENT_HOUR, freezeClock, makeEvent, pendingUsage } from "./fixtures";

const HOUR = 3_600_000;

useFrozenClock(freezeClock);

const usage = (micros: number, sku = "tokens", unit = "token") => ({ sku, unit, micros });

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
		expect(await stub.flush()).toBe(2);
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

		// One id chunk, one event rollup upsert, one usage rollup upsert, and the state row.
		expect((await stub.operations()).sqlite_rows_written - before).toBe(4);
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

describe("counters per event name and UTC minute", () => {
	it("counts errors for status codes of 500 and above only", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const statuses = [200, 404, 499, 500, 503, 599, undefined];

		await stub.ingest(
			tenant,
			statuses.map((statusCode) => makeEvent(statusCode === undefined ? {} : { performance: { statusCode } })),
		);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([{ ...countOnly("api_call", "2100-03-10T13:59:00.000Z", 7), errors: 3 }]);
	});

	it("keeps duration count, sum, min and max per event name", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);

		await stub.ingest(tenant, [
			makeEvent({ performance: { duration: 12.5 } }),
			makeEvent({ performance: { duration: 40, statusCode: 502 } }),
			makeEvent(),
			makeEvent({ performance: { duration: 3 } }),
			makeEvent({ event: "page_view", performance: { duration: 7.25 } }),
			makeEvent({ event: "signup" }),
		]);
		// A later slice for the same minute merges into the same row: min and max keep the extremes.
		await stub.ingest(tenant, [
			makeEvent({ performance: { duration: 1 } }),
			makeEvent({ event: "page_view", performance: { statusCode: 200 } }),
		]);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([
			{
				event: "api_call",
				minute: "2100-03-10T13:59:00.000Z",
				count: 5,
				errors: 1,
				duration_count: 4,
				duration_sum: 56.5,
				duration_min: 1,
				duration_max: 40,
			},
			{
				event: "page_view",
				minute: "2100-03-10T13:59:00.000Z",
				count: 2,
				errors: 0,
				duration_count: 1,
				duration_sum: 7.25,
				duration_min: 7.25,
				duration_max: 7.25,
			},
			countOnly("signup", "2100-03-10T13:59:00.000Z", 1),
		]);
	});

	it("merges flushed minutes in D1 without letting an empty minute's null win min or max", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);

		await stub.ingest(tenant, [makeEvent({ performance: { duration: 9 } })]);
		await stub.flush();
		await stub.ingest(tenant, [makeEvent()]);
		await stub.flush();
		await stub.ingest(tenant, [
			makeEvent({ performance: { duration: 2 } }),
			makeEvent({ performance: { duration: 30, statusCode: 500 } }),
		]);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([
			{
				event: "api_call",
				minute: "2100-03-10T13:59:00.000Z",
				count: 4,
				errors: 1,
				duration_count: 3,
				duration_sum: 41,
				duration_min: 2,
				duration_max: 30,
			},
		]);
	});
});

describe("buckets for out-of-order timestamps", () => {
	it("puts events in reverse time order into their own minute and hour across an hour boundary", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const reverse = [
			AT["14:01:30.000"],
			AT["14:00:00.000"],
			AT["13:59:59.999"],
			AT["13:59:30.000"],
			AT["13:59:00.000"],
			AT["13:58:00.000"],
		];

		await stub.ingest(
			tenant,
			reverse.map((timestamp, i) => makeEvent({ timestamp, usage: usage(10 ** i) })),
		);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([
			countOnly("api_call", "2100-03-10T13:58:00.000Z", 1),
			countOnly("api_call", "2100-03-10T13:59:00.000Z", 3),
			countOnly("api_call", "2100-03-10T14:00:00.000Z", 1),
			countOnly("api_call", "2100-03-10T14:01:00.000Z", 1),
		]);
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "111100", events: 4 },
			{ sku: "tokens", unit: "token", hour: "2100-03-10T14:00:00.000Z", micros: "11", events: 2 },
		]);
	});

	it("merges a later slice of earlier timestamps into the buckets an earlier slice opened", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);

		// Shuffled within each slice, and the second slice goes back in time past the hour boundary.
		await stub.ingest(tenant, [
			makeEvent({ timestamp: AT["14:00:00.000"], usage: usage(1) }),
			makeEvent({ timestamp: AT["13:59:59.999"], usage: usage(2) }),
			makeEvent({ timestamp: AT["14:01:30.000"], usage: usage(4, "storage", "GB") }),
		]);
		await stub.ingest(tenant, [
			makeEvent({ timestamp: AT["13:59:00.000"], usage: usage(8) }),
			makeEvent({ timestamp: AT["14:01:30.000"], usage: usage(16) }),
			makeEvent({ timestamp: AT["13:58:00.000"], usage: usage(32, "storage", "GB") }),
			makeEvent({ timestamp: AT["14:00:00.000"], usage: usage(64, "storage", "GB") }),
		]);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([
			countOnly("api_call", "2100-03-10T13:58:00.000Z", 1),
			countOnly("api_call", "2100-03-10T13:59:00.000Z", 2),
			countOnly("api_call", "2100-03-10T14:00:00.000Z", 2),
			countOnly("api_call", "2100-03-10T14:01:00.000Z", 2),
		]);
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "storage", unit: "GB", hour: "2100-03-10T13:00:00.000Z", micros: "32", events: 1 },
			{ sku: "storage", unit: "GB", hour: "2100-03-10T14:00:00.000Z", micros: "68", events: 2 },
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "10", events: 2 },
			{ sku: "tokens", unit: "token", hour: "2100-03-10T14:00:00.000Z", micros: "17", events: 2 },
		]);
	});
});

describe("exact usage sums", () => {
	it("sums ten quantities of 0.1 to exactly one unit", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const tenth = () => makeEvent({ usage: usage(100_000) });

		// In one slice, across slices before a flush, and across flushes.
		await stub.ingest(tenant, [tenth(), tenth(), tenth(), tenth()]);
		await stub.ingest(tenant, [tenth(), tenth(), tenth()]);
		await stub.flush();
		await stub.ingest(tenant, [tenth(), tenth(), tenth()]);
		await stub.flush();

		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "1000000", events: 10 },
		]);
	});

	it("sums the largest quantities past 2^53 exactly within one slice", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const max = 9_000_000_000_000_000; // 9e9 units, the per-event maximum

		await stub.ingest(tenant, [
			makeEvent({ usage: usage(max) }),
			makeEvent({ usage: usage(max) }),
			makeEvent({ usage: usage(1) }),
			makeEvent({ usage: usage(max) }),
		]);

		await runInDurableObject(stub, (_instance, state) => {
			expect(pendingUsage(state)).toEqual([
				{ batch: 0, sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "27000000000000001", events: 4 },
			]);
		});
		await stub.flush();
		// 27000000000000001 is not a double: a float sum anywhere on the way would round it.
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "27000000000000001", events: 4 },
		]);
	});

	it("sums the largest quantities past 2^53 exactly across slices and flushes", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const max = 9_000_000_000_000_000;

		await stub.ingest(tenant, [makeEvent({ usage: usage(max) }), makeEvent({ usage: usage(max) })]);
		await stub.ingest(tenant, [makeEvent({ usage: usage(max) })]);
		await stub.flush();
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "27000000000000000", events: 3 },
		]);

		await stub.ingest(tenant, [makeEvent({ usage: usage(max) }), makeEvent({ usage: usage(1) })]);
		await stub.flush();
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "36000000000000001", events: 5 },
		]);
	});
});
