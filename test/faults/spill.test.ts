// The queue refusing sends after the 202: retries inside waitUntil, then a spill to the tenant's
// aggregator, whose alarm re-enqueues the events to the real queue (also a chunk whose re-enqueue
// fails, and a spill larger than a row); when the aggregator refuses the spill too, the events are
// counted as lost. Every spilled event ends up counted exactly once.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { advanceClock, call, createTenant, RecordingQueue, useFrozenClock } from "../helpers";
import { countOnly, flushVia, HOUR, iso, metricsOf, metricsWith, MINUTE, statsOf, usageOf } from "../read/helpers";
import {
	alarmOf,
	eventsRequest,
	expectThreeEventsReported,
	failAggregatorWrites,
	freezeClock,
	healthOf,
	postThrough,
	previousHour,
	spilledChunks,
	THREE_EVENTS_ROWS,
	threeEvents,
	unflushedMetricsBecome,
	wrapAggregatorQueue,
} from "./helpers";

const clock = useFrozenClock(freezeClock);

describe("a send that keeps failing after the 202", () => {
	it("spills the events to the tenant's aggregator, whose alarm re-enqueues them to the real queue, counted once", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 15 * MINUTE;
		const { wire, queued } = threeEvents(minute);
		const queue = RecordingQueue.alwaysFailing();

		const response = await postThrough(queue, eventsRequest(wire, tenant.writeKey));

		expect(response.status).toBe(202);
		expect(await response.json()).toEqual({ accepted: 3, ids: ["p1", "p2", "p3"] });
		// The first send and its three retries, each of the same one message.
		expect(queue.calls).toEqual(Array.from({ length: 4 }, () => [{ v: 1, tenant: tenant.id, events: queued }]));
		expect(queue.delivered).toBe(0);
		expect(await spilledChunks(tenant.id)).toEqual([{ events: queued, spilledAt: clock.start }]);
		expect(await alarmOf(tenant.id)).toBe(clock.start);
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [], spills: [{ tenant: tenant.id, at: clock.start, events: 3 }] });
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { received: 3, enqueueFailures: 3, spilled: 3, spillPending: expect.any(Number) }),
		);
		// A spill in the last five minutes means the queue is refusing sends now.
		const health = await call("/v1/health");
		expect(health.status).toBe(503);
		expect(await health.json()).toEqual({
			status: "critical",
			checks: {
				d1: { ok: true },
				monitor: { ok: true },
				flushes: { retryingTenants: 0, failingOverThreshold: [], oldestFailureSince: null },
				deadLetters: { lastHour: 0, capped: false },
				spills: { lastHour: 3, lastFiveMinutes: 3 },
				destinations: { healthy: 0, degraded: 0, critical: 0 },
			},
		});

		// The aggregator's alarm sends them through its own, real, EVENTS binding.
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await spilledChunks(tenant.id)).toEqual([]);
		await unflushedMetricsBecome(tenant, { received: 3, enqueueFailures: 3, spilled: 3, respooled: 3, consumed: 3, aggregated: 3 });

		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: THREE_EVENTS_ROWS });
		await expectThreeEventsReported(tenant, minute, clock.start);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: 3,
				enqueueFailures: 3,
				spilled: 3,
				respooled: 3,
				consumed: 3,
				aggregated: 3,
				flushedRows: THREE_EVENTS_ROWS,
			}),
		);
		// Later than five minutes after the spill, it only degrades the pipeline, for the hour.
		advanceClock(5 * MINUTE + 1);
		const later = await call("/v1/health");
		expect(later.status).toBe(200);
		expect(await later.json()).toMatchObject({ status: "degraded", checks: { spills: { lastHour: 3, lastFiveMinutes: 0 } } });
	});

	it("spills only the events of the sendBatch calls the queue refused", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 16 * MINUTE;
		// 1000 events of about 800 bytes each: several messages, in several sendBatch calls.
		const wire = Array.from({ length: 1000 }, (_, i) => ({
			id: `b${String(i).padStart(4, "0")}`,
			event: "bulk",
			timestamp: minute,
			usage: { sku: "rows", quantity: 1 },
			properties: { pad: "x".repeat(700 + ((i * 37) % 50)) },
		}));
		// The queue takes the first sendBatch and refuses every later one.
		const queue = RecordingQueue.failingAfter(1);

		expect((await postThrough(queue, eventsRequest(wire, tenant.writeKey))).status).toBe(202);

		const ids = wire.map((event) => event.id);
		const enqueued = queue.eventsOfCall(1).map((event) => event.id);
		const [chunk, ...more] = await spilledChunks(tenant.id);
		expect(more).toEqual([]);
		const spilled = chunk!.events.map((event) => event.id);
		// The second sendBatch was tried four times; what it and the calls after it held is spilled, in order.
		expect(queue.calls).toHaveLength(5);
		expect([queue.delivered, queue.failed]).toEqual([1, 4]);
		expect(queue.calls.slice(2)).toEqual([queue.calls[1], queue.calls[1], queue.calls[1]]);
		expect(spilled.slice(0, queue.eventsOfCall(2).length)).toEqual(queue.eventsOfCall(2).map((event) => event.id));
		expect(spilled.length).toBeGreaterThan(queue.eventsOfCall(2).length);
		expect([...enqueued, ...spilled]).toEqual(ids);
		expect(await healthOf(tenant.id)).toEqual({
			failingFlushes: [],
			spills: [{ tenant: tenant.id, at: clock.start, events: spilled.length }],
		});
		// The events the queue took arrive first; the alarm flushes them (14 rows: 1 usage, 1 event and
		// 12 series rows, bulk's 4 dimensions × minute, hour, day) and re-enqueues the rest.
		const before = {
			received: 1000,
			enqueued: enqueued.length,
			enqueueFailures: spilled.length,
			spilled: spilled.length,
			spillPending: expect.any(Number),
		};
		await unflushedMetricsBecome(tenant, { ...before, consumed: enqueued.length, aggregated: enqueued.length });

		expect(await runDurableObjectAlarm(stub)).toBe(true);
		await unflushedMetricsBecome(tenant, {
			received: 1000,
			enqueued: enqueued.length,
			enqueueFailures: spilled.length,
			spilled: spilled.length,
			respooled: spilled.length,
			consumed: 1000,
			aggregated: 1000,
			flushedRows: 14,
		});
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 14 });
		const hour = previousHour(clock.start);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
			{ sku: "rows", unit: "unit", period: iso(hour), quantity: 1000, quantityDecimal: "1000", events: 1000 },
		]);
		expect(await statsOf(tenant, hour, hour + HOUR)).toEqual([countOnly("bulk", minute, 1000)]);
		expect((await metricsOf(tenant)).flushedRows).toBe(28);
	});

	it("keeps a spilled chunk whose re-enqueue fails, and re-enqueues it 5 s later", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 17 * MINUTE;
		const tokens = (id: string, quantity: number) => ({ id, event: "api_call", timestamp: minute, usage: { sku: "tokens", quantity } });
		const down = RecordingQueue.alwaysFailing();
		expect((await postThrough(down, eventsRequest([tokens("c1", 1), tokens("c2", 2)], tenant.writeKey))).status).toBe(202);
		expect((await postThrough(down, eventsRequest([tokens("c3", 4)], tenant.writeKey))).status).toBe(202);
		expect((await spilledChunks(tenant.id)).map((chunk) => chunk.events.map((event) => event.id))).toEqual([["c1", "c2"], ["c3"]]);
		// The aggregator's queue takes the first chunk, refuses the second once, then takes it.
		const respool = new RecordingQueue({ fails: (n) => n === 2 });
		await wrapAggregatorQueue(tenant.id, respool);

		expect(await runDurableObjectAlarm(stub)).toBe(true);

		expect(respool.calls.map((batch) => batch.flatMap((body) => body.events.map((event) => event.id)))).toEqual([["c1", "c2"], ["c3"]]);
		expect((await spilledChunks(tenant.id)).map((chunk) => chunk.events.map((event) => event.id))).toEqual([["c3"]]);
		expect(await alarmOf(tenant.id)).toBe(clock.start + 5_000);
		await unflushedMetricsBecome(tenant, {
			received: 3,
			enqueueFailures: 3,
			spilled: 3,
			respooled: 2,
			consumed: 2,
			aggregated: 2,
			spillPending: expect.any(Number),
		});

		// Before the pause ends the alarm flushes what arrived (14 rows: 1 usage, 1 event and 12 series
		// rows, api_call's 4 dimensions × minute, hour, day), and leaves the chunk alone.
		vi.setSystemTime(clock.start + 4_999);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(respool.calls).toHaveLength(2);
		expect(await alarmOf(tenant.id)).toBe(clock.start + 5_000);

		vi.setSystemTime(clock.start + 5_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(respool.calls).toHaveLength(3);
		expect(await spilledChunks(tenant.id)).toEqual([]);
		await unflushedMetricsBecome(tenant, {
			received: 3,
			enqueueFailures: 3,
			spilled: 3,
			respooled: 3,
			consumed: 3,
			aggregated: 3,
			flushedRows: 14,
		});

		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 14 });
		const hour = previousHour(clock.start);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
			{ sku: "tokens", unit: "unit", period: iso(hour), quantity: 7, quantityDecimal: "7", events: 3 },
		]);
		expect(await statsOf(tenant, hour, hour + HOUR)).toEqual([countOnly("api_call", minute, 3)]);
		expect((await metricsOf(tenant)).flushedRows).toBe(28);
	});

	it("counts the events as lost when the tenant's aggregator refuses the spill too", async () => {
		const tenant = await createTenant();
		const { wire } = threeEvents(previousHour(clock.start) + 18 * MINUTE);
		const spill = await failAggregatorWrites(tenant.id, Infinity, "before-commit");
		const queue = RecordingQueue.alwaysFailing();

		expect((await postThrough(queue, eventsRequest(wire, tenant.writeKey))).status).toBe(202);

		expect(queue.calls).toHaveLength(4);
		expect(spill).toEqual({ calls: 1, failed: 1 });
		expect(await spilledChunks(tenant.id)).toEqual([]);
		expect(await alarmOf(tenant.id)).toBeNull();
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [], spills: [] });
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { received: 3, enqueueFailures: 3, lost: 3 }));
	});

	it("reports spillPending as the number of spilled events still waiting, like spilled and respooled", async () => {
		const tenant = await createTenant();
		const { wire } = threeEvents(previousHour(clock.start) + 19 * MINUTE);

		expect((await postThrough(RecordingQueue.alwaysFailing(), eventsRequest(wire, tenant.writeKey))).status).toBe(202);

		// One chunk of three events is waiting: spillPending counts events (AggregatorMetrics.spillPending).
		expect(await spilledChunks(tenant.id)).toHaveLength(1);
		const metrics = await metricsOf(tenant);
		expect({ spilled: metrics.spilled, respooled: metrics.respooled, spillPending: metrics.spillPending }).toEqual({
			spilled: 3,
			respooled: 0,
			spillPending: 3,
		});
	});
});

describe("a spill larger than a Durable Object row", () => {
	it("is kept in rows of at most 1 MB, re-enqueued, and counted once", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 25 * MINUTE;
		// 90 events of ~30 KB: about 2.7 MB, more than the 2 MB one SQLite row may hold.
		const padding = "x".repeat(30_000);
		const events: QueuedEvent[] = Array.from({ length: 90 }, (_, i) => ({
			id: `big-${i}`,
			event: "upload",
			timestamp: minute,
			properties: { padding },
			usage: { sku: "bytes", unit: "unit", micros: 1_000_000 },
		}));

		await stub.spill(tenant.id, events);

		const chunks = await spilledChunks(tenant.id);
		expect(chunks.map((chunk) => chunk.events.length)).toEqual([33, 33, 24]);
		for (const chunk of chunks) expect(new TextEncoder().encode(JSON.stringify(chunk.events)).length).toBeLessThanOrEqual(1_000_000);
		expect(chunks.flatMap((chunk) => chunk.events)).toEqual(events);

		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await spilledChunks(tenant.id)).toEqual([]);
		await unflushedMetricsBecome(tenant, { spilled: 90, respooled: 90, consumed: 90, aggregated: 90 });
		// 1 usage + 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 14 });
		const hour = previousHour(clock.start);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
			{ sku: "bytes", unit: "unit", period: iso(hour), quantity: 90, quantityDecimal: "90", events: 90 },
		]);
	});
});
