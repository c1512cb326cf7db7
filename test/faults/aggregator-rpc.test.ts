// The consumer's ingest RPC failing: the tenant's messages are retried with backoff (the rest of the
// batch is acked), and the redelivery counts every event exactly once, whether the failed call had
// committed or not. Then the same through the real local queue, whose broker redelivers.
import { describe, expect, it, vi } from "vitest";
import { deliver, eventsMessage, listDeadLetters, queuedEvent, seenIds } from "../consumer/helpers";
import { createTenant, postJson, useFrozenClock, type TestTenant } from "../helpers";
import { countOnly, flushVia, HOUR, iso, metricsOf, metricsWith, MINUTE, statsOf, usageOf } from "../read/helpers";
import { failAggregatorWrites, freezeClock, previousHour, tokens } from "./helpers";

const clock = useFrozenClock(freezeClock);

/** Three metered events in one minute of the previous hour: 0.5 + 1.25 + 2 = 3.75 tokens. */
function threeEvents(minute: number) {
	return [
		queuedEvent({ id: "e1", timestamp: minute, usage: tokens(500_000), performance: { duration: 4, statusCode: 200 } }),
		queuedEvent({ id: "e2", timestamp: minute, usage: tokens(1_250_000), performance: { duration: 6, statusCode: 500 } }),
		queuedEvent({ id: "e3", timestamp: minute, usage: tokens(2_000_000) }),
	];
}

async function expectThreeEventsReported(tenant: TestTenant, minute: number): Promise<void> {
	const hour = previousHour(clock.start);
	// 1 usage + 1 event row + 18 series rows: api_call's total, route "", status 200, 500 and "",
	// country "" (6) × minute, hour, day.
	expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 20 });
	expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
		{ sku: "tokens", unit: "token", period: iso(hour), quantity: 3.75, quantityDecimal: "3.75", events: 3 },
	]);
	expect(await statsOf(tenant, hour, hour + HOUR)).toEqual([
		{ event: "api_call", period: iso(minute), count: 3, errors: 1, duration: { count: 2, sum: 10, min: 4, max: 6 } },
	]);
}

describe("through the consumer's queue handler", () => {
	it("retries the failing tenant's messages with growing delays while acking the others, then counts them once", async () => {
		const [tenant, healthy] = await Promise.all([createTenant(), createTenant()]);
		const minute = previousHour(clock.start) + 20 * MINUTE;
		const [e1, e2, e3] = threeEvents(minute);
		const rpc = await failAggregatorWrites(tenant.id, 2, "before-commit");
		// Jitter at its midpoint: delay = round(step × 0.75), step = 2 s × 2^(attempts − 1).
		vi.spyOn(Math, "random").mockReturnValue(0.5);
		const x1 = (attempts: number) => eventsMessage(`${tenant.id}/x1`, tenant.id, [e1!, e2!], attempts);
		const x2 = (attempts: number) => eventsMessage(`${tenant.id}/x2`, tenant.id, [e3!], attempts);
		const h1 = eventsMessage(`${healthy.id}/h1`, healthy.id, [queuedEvent({ id: "h", timestamp: minute })]);

		const first = await deliver([x1(1), h1, x2(1)]);
		expect(first.explicitAcks).toEqual([h1.id]);
		expect(first.retryMessages).toEqual([
			{ msgId: `${tenant.id}/x1`, delaySeconds: 2 },
			{ msgId: `${tenant.id}/x2`, delaySeconds: 2 },
		]);

		const second = await deliver([x1(2), x2(2)]);
		expect(second.explicitAcks).toEqual([]);
		expect(second.retryMessages).toEqual([
			{ msgId: `${tenant.id}/x1`, delaySeconds: 3 },
			{ msgId: `${tenant.id}/x2`, delaySeconds: 3 },
		]);
		// The failed calls rolled back: the aggregator has nothing yet.
		expect(await seenIds(tenant.id)).toEqual([]);

		const third = await deliver([x2(3), x1(3)]);
		expect(third.explicitAcks).toEqual([`${tenant.id}/x2`, `${tenant.id}/x1`]);
		expect(third.retryMessages).toEqual([]);

		// One RPC per tenant per batch: three calls, the first two refused.
		expect(rpc).toEqual({ calls: 3, failed: 2 });
		expect(await seenIds(tenant.id)).toEqual(["e1", "e2", "e3"]);
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { consumed: 3, aggregated: 3, oldestUnflushedAgeMs: 0 }));
		await expectThreeEventsReported(tenant, minute);
		// Visible before its flush (the read merges what the aggregator holds), and the same after.
		expect(await statsOf(healthy, minute, minute + MINUTE)).toEqual([countOnly("api_call", minute, 1)]);
		// 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await (await flushVia(healthy)).json()).toEqual({ flushed: 13 });
		expect(await statsOf(healthy, minute, minute + MINUTE)).toEqual([countOnly("api_call", minute, 1)]);
	});

	it("drops the redelivered events when the failed call had already committed them", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 21 * MINUTE;
		const rpc = await failAggregatorWrites(tenant.id, 1, "after-commit");
		vi.spyOn(Math, "random").mockReturnValue(1);
		const message = (attempts: number) => eventsMessage(`${tenant.id}/m`, tenant.id, threeEvents(minute), attempts);

		const first = await deliver([message(1)]);
		// Jitter at its maximum: the full step, 2 s.
		expect(first.retryMessages).toEqual([{ msgId: `${tenant.id}/m`, delaySeconds: 2 }]);
		expect(first.explicitAcks).toEqual([]);
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { consumed: 3, aggregated: 3, oldestUnflushedAgeMs: 0 }));

		const second = await deliver([message(2)]);
		expect(second.explicitAcks).toEqual([`${tenant.id}/m`]);
		expect(second.retryMessages).toEqual([]);

		expect(rpc).toEqual({ calls: 2, failed: 1 });
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: 6, duplicatesDropped: 3, aggregated: 3, oldestUnflushedAgeMs: 0 }),
		);
		await expectThreeEventsReported(tenant, minute);
	});
});

describe("through the real local queue", () => {
	/** POSTs the three events' wire form through the Worker; the real queue carries them to the consumer. */
	async function postThreeEvents(tenant: TestTenant, minute: number): Promise<void> {
		const events = [
			{
				id: "e1",
				event: "api_call",
				timestamp: minute,
				usage: { sku: "tokens", unit: "token", quantity: 0.5 },
				performance: { duration: 4, statusCode: 200 },
			},
			{
				id: "e2",
				event: "api_call",
				timestamp: iso(minute),
				usage: { sku: "tokens", unit: "token", quantity: 1.25 },
				performance: { duration: 6, statusCode: 500 },
			},
			{ id: "e3", event: "api_call", timestamp: minute, usage: { sku: "tokens", unit: "token", quantity: 2 } },
		];
		const response = await postJson("/v1/events", { events }, tenant.writeKey);
		expect(response.status).toBe(202);
	}

	it("lets the broker redeliver a message whose first ingest RPC failed, and counts it once", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 22 * MINUTE;
		const rpc = await failAggregatorWrites(tenant.id, 1, "before-commit");
		// Jitter at its minimum: the redelivery comes after 1 s.
		vi.spyOn(Math, "random").mockReturnValue(0);

		await postThreeEvents(tenant, minute);

		await vi.waitFor(
			async () =>
				expect(await metricsOf(tenant)).toEqual(
					metricsWith(tenant, { received: 3, enqueued: 3, consumed: 3, aggregated: 3, oldestUnflushedAgeMs: expect.any(Number) }),
				),
			{
				timeout: 15_000,
				interval: 100,
			},
		);
		expect(rpc).toEqual({ calls: 2, failed: 1 });
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items).toEqual([]);
		await expectThreeEventsReported(tenant, minute);
	});

	it("lets the broker redeliver a message whose ingest committed before the RPC failed, and drops the repeat", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 23 * MINUTE;
		const rpc = await failAggregatorWrites(tenant.id, 1, "after-commit");
		vi.spyOn(Math, "random").mockReturnValue(0);

		await postThreeEvents(tenant, minute);

		await vi.waitFor(
			async () =>
				expect(await metricsOf(tenant)).toEqual(
					metricsWith(tenant, {
						received: 3,
						enqueued: 3,
						consumed: 6,
						duplicatesDropped: 3,
						aggregated: 3,
						oldestUnflushedAgeMs: expect.any(Number),
					}),
				),
			{ timeout: 15_000, interval: 100 },
		);
		expect(rpc).toEqual({ calls: 2, failed: 1 });
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items).toEqual([]);
		await expectThreeEventsReported(tenant, minute);
	});
});
