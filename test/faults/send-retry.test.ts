// The queue refusing some sends: a send that fails twice is retried inside waitUntil and enqueued,
// nothing spilled; and ?ack=durable, which makes the caller wait for the queue (503 with
// Retry-After when it keeps refusing). Every accepted event is counted exactly once.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { createTenant, deferred, fetchWith, postJson, RecordingQueue, useFrozenClock } from "../helpers";
import { flushVia, metricsOf, metricsWith, MINUTE } from "../read/helpers";
import {
	alarmOf,
	eventsRequest,
	expectThreeEventsReported,
	freezeClock,
	healthOf,
	postThrough,
	previousHour,
	spilledChunks,
	THREE_EVENTS_ROWS,
	threeEvents,
	unflushedMetricsBecome,
} from "./helpers";

const clock = useFrozenClock(freezeClock);

describe("a send that fails twice and then succeeds", () => {
	it("is retried inside waitUntil and enqueued, with nothing spilled", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 20 * MINUTE;
		const { wire, queued } = threeEvents(minute);
		const queue = RecordingQueue.failingFirst(2);

		expect((await postThrough(queue, eventsRequest(wire, tenant.writeKey))).status).toBe(202);

		expect(queue.calls).toEqual(Array.from({ length: 3 }, () => [{ v: 1, tenant: tenant.id, events: queued }]));
		expect([queue.failed, queue.delivered]).toEqual([2, 1]);
		expect(await spilledChunks(tenant.id)).toEqual([]);
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [], spills: [] });
		await unflushedMetricsBecome(tenant, { received: 3, enqueued: 3, consumed: 3, aggregated: 3 });
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: THREE_EVENTS_ROWS });
		await expectThreeEventsReported(tenant, minute, clock.start);
	});
});

describe("?ack=durable", () => {
	it("answers 202 only once the queue has accepted the events", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 21 * MINUTE;
		const { wire } = threeEvents(minute);
		const gate = deferred();
		const queue = new RecordingQueue({ gate: gate.promise });
		const ctx = createExecutionContext();
		let answered = false;

		const answer = fetchWith(eventsRequest(wire, tenant.writeKey, "?ack=durable"), queue, ctx).then((response) => {
			answered = true;
			return response;
		});
		await vi.waitFor(() => expect(queue.calls).toHaveLength(1));
		// Give a handler that did not wait every chance to answer.
		await new Promise((resolve) => setTimeout(resolve, 50));
		expect(answered).toBe(false);
		expect(queue.delivered).toBe(0);

		gate.resolve();
		const response = await answer;
		await waitOnExecutionContext(ctx);

		expect(response.status).toBe(202);
		expect(await response.json()).toEqual({ accepted: 3, ids: ["p1", "p2", "p3"] });
		expect(queue.delivered).toBe(1);
		await unflushedMetricsBecome(tenant, { received: 3, enqueued: 3, consumed: 3, aggregated: 3 });
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: THREE_EVENTS_ROWS });
		await expectThreeEventsReported(tenant, minute, clock.start);
	});

	it("answers 202 after two refused sends, once the third is accepted", async () => {
		const tenant = await createTenant();
		const { wire } = threeEvents(previousHour(clock.start) + 22 * MINUTE);
		const queue = RecordingQueue.failingFirst(2);

		const response = await postThrough(queue, eventsRequest(wire, tenant.writeKey, "?ack=durable"));

		expect(response.status).toBe(202);
		expect([queue.calls.length, queue.failed, queue.delivered]).toEqual([3, 2, 1]);
		await unflushedMetricsBecome(tenant, { received: 3, enqueued: 3, consumed: 3, aggregated: 3 });
	});

	it("answers 503 with Retry-After 5 when the queue refuses every send, spills nothing, and a resend counts once", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 23 * MINUTE;
		const { wire } = threeEvents(minute);
		const queue = RecordingQueue.alwaysFailing();

		const response = await postThrough(queue, eventsRequest(wire, tenant.writeKey, "?ack=durable"));

		expect(response.status).toBe(503);
		expect(response.headers.get("retry-after")).toBe("5");
		expect(await response.json()).toEqual({
			error: { code: "unavailable", message: "The queue is unavailable; retry the same events later (their ids make a retry safe)" },
		});
		expect(queue.calls).toHaveLength(4);
		expect(queue.delivered).toBe(0);
		expect(await spilledChunks(tenant.id)).toEqual([]);
		expect(await alarmOf(tenant.id)).toBeNull();
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [], spills: [] });
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { received: 3, enqueueFailures: 3 }));

		// The caller resends the same events once the queue is back.
		const resent = await postJson("/v1/events?ack=durable", { events: wire }, tenant.writeKey);
		expect(resent.status).toBe(202);
		await unflushedMetricsBecome(tenant, { received: 6, enqueued: 3, enqueueFailures: 3, consumed: 3, aggregated: 3 });
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: THREE_EVENTS_ROWS });
		await expectThreeEventsReported(tenant, minute, clock.start);
	});
});
