// Everything that can happen twice: a flush retried after D1 committed but before the local clear,
// a queue message delivered again, a send the queue took although the producer saw it fail, and
// an alarm that fires twice. Each is counted once.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import { crashAfterD1Commit, d1Flushes, failD1, flushMeta, incarnation, pendingRowCount } from "../aggregator/helpers";
import { deliver, eventsMessage, queuedEvent, seenIds } from "../consumer/helpers";
import { advanceClock, createTenant, RecordingQueue, useFrozenClock, type TestTenant } from "../helpers";
import { countOnly, flushVia, HOUR, iso, metricsOf, metricsWith, MINUTE, statsOf, usageOf } from "../read/helpers";
import { alarmOf, eventsRequest, freezeClock, postThrough, previousHour, tokens } from "./helpers";

const clock = useFrozenClock(freezeClock);

/** Two metered api calls and a page view in one minute: one usage row and two event rows. */
function slice(minute: number) {
	return [
		queuedEvent({ id: "s1", timestamp: minute, usage: tokens(700_000), performance: { duration: 3, statusCode: 500 } }),
		queuedEvent({ id: "s2", timestamp: minute, usage: tokens(300_001) }),
		queuedEvent({ id: "s3", timestamp: minute, event: "page_view" }),
	];
}

/**
 * The rows one flush of the slice writes: its usage and event rows, and 27 series rows, 9 per grain
 * (minute, hour, day): api_call's total, route "", status 500 and "", country "" (5), page_view's 4.
 */
const SLICE_ROWS = 3 + 27;

async function expectSliceReported(
	tenant: TestTenant,
	minute: number,
	extra: { micros: number; minute: number } | null = null,
): Promise<void> {
	const hour = previousHour(clock.start);
	const quantity = (1_000_001 + (extra?.micros ?? 0)) / 1_000_000;
	expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
		{ sku: "tokens", unit: "token", period: iso(hour), quantity, quantityDecimal: String(quantity), events: extra ? 3 : 2 },
	]);
	const stats = [
		{ event: "api_call", period: iso(minute), count: 2, errors: 1, duration: { count: 1, sum: 3, min: 3, max: 3 } },
		countOnly("page_view", minute, 1),
	];
	if (extra) stats.push(countOnly("api_call", extra.minute, 1));
	expect(await statsOf(tenant, hour, hour + HOUR)).toEqual(stats);
}

describe("a crash between D1's commit and the local clear", () => {
	it("answers 503, and the retried flush adds nothing to what D1 already has, nor to events ingested since", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 7 * MINUTE;
		await deliver([eventsMessage(`${tenant.id}/m1`, tenant.id, slice(minute))]);
		const d1 = await runInDurableObject(stub, (instance) => crashAfterD1Commit(instance, 1));

		const crashed = await flushVia(tenant);

		expect(crashed.status).toBe(503);
		// D1 committed: the reports are complete although the aggregator still holds the batch sealed.
		await expectSliceReported(tenant, minute);
		await runInDurableObject(stub, (_instance, state) => {
			expect(pendingRowCount(state)).toBe(3);
			expect(flushMeta(state)).toEqual({ sealed_batch: "1", flush_failures: "1", retry_at: String(clock.start + 2_000) });
		});
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: 3, aggregated: 3, flushFailures: 1, oldestUnflushedAgeMs: 0 }),
		);

		// An event arrives before the retry; it goes into a batch of its own.
		const later = minute + MINUTE;
		await deliver([eventsMessage(`${tenant.id}/m2`, tenant.id, [queuedEvent({ id: "s4", timestamp: later, usage: tokens(1) })])]);
		const retried = await flushVia(tenant);

		// The sealed batch is resent (its 30 rows), the ledger refuses it; then the new batch's 14 rows:
		// 1 usage + 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await retried.json()).toEqual({ flushed: SLICE_ROWS + 14 });
		expect(d1.applied).toEqual([true, false, true]);
		await expectSliceReported(tenant, minute, { micros: 1, minute: later });
		const inc = await runInDurableObject(stub, (_instance, state) => {
			expect(pendingRowCount(state)).toBe(0);
			expect(flushMeta(state)).toEqual({});
			return incarnation(state);
		});
		// Flush 2's transaction deleted flush 1's ledger row: no retry can resend batch 1 any more.
		expect(await d1Flushes(tenant.id)).toEqual([{ flush_id: `${inc}:2`, rows: 14 }]);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: 4, aggregated: 4, flushedRows: SLICE_ROWS + 14, flushFailures: 1 }),
		);
	});

	it("leaves the sealed batch to the alarm after the backoff, which adds nothing", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 8 * MINUTE;
		await deliver([eventsMessage(`${tenant.id}/m1`, tenant.id, slice(minute))]);
		const d1 = await runInDurableObject(stub, (instance) => crashAfterD1Commit(instance, 1));

		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(d1.applied).toEqual([true]);
		expect(await alarmOf(tenant.id)).toBe(clock.start + 2_000);
		advanceClock(2_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);

		expect(d1.applied).toEqual([true, false]);
		await expectSliceReported(tenant, minute);
		expect(await d1Flushes(tenant.id)).toHaveLength(1);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: 3, aggregated: 3, flushedRows: SLICE_ROWS, flushFailures: 1 }),
		);
	});
});

describe("duplicate delivery", () => {
	it("acks a message delivered again, and a second message repeating its events, counting each event once", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 9 * MINUTE;
		const events = slice(minute);
		const m1 = (attempts: number) => eventsMessage(`${tenant.id}/m1`, tenant.id, events, attempts);

		const first = await deliver([m1(1)]);
		// The broker delivers m1 again (its ack was lost), next to m2: a producer's resend of the same events plus one more.
		const later = minute + MINUTE;
		const m2 = eventsMessage(`${tenant.id}/m2`, tenant.id, [...events, queuedEvent({ id: "s4", timestamp: later, usage: tokens(1) })]);
		const second = await deliver([m1(2), m2]);

		expect(first.explicitAcks).toEqual([`${tenant.id}/m1`]);
		expect(second.explicitAcks).toEqual([`${tenant.id}/m1`, `${tenant.id}/m2`]);
		expect(second.retryMessages).toEqual([]);
		expect(await seenIds(tenant.id)).toEqual(["s1", "s2", "s3", "s4"]);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: 10, duplicatesDropped: 6, aggregated: 4, oldestUnflushedAgeMs: 0 }),
		);

		// 1 usage + 3 event rows + 31 series rows: the slice's 9 per grain, and s4's 4 in its own minute
		// (its hour and day rows are api_call's again): 13 minute, 9 hour and 9 day rows.
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 4 + 31 });
		await expectSliceReported(tenant, minute, { micros: 1, minute: later });
	});

	it("counts once the events of a send the real queue took although the producer saw it fail", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 10 * MINUTE;
		const queue = RecordingQueue.losingFirstAcks(1);
		const wire = [
			{
				id: "s1",
				event: "api_call",
				timestamp: minute,
				usage: { sku: "tokens", unit: "token", quantity: 0.7 },
				performance: { duration: 3, statusCode: 500 },
			},
			{ id: "s2", event: "api_call", timestamp: minute, usage: { sku: "tokens", unit: "token", quantity: 0.300001 } },
			{ id: "s3", event: "page_view", timestamp: iso(minute) },
		];

		const response = await postThrough(queue, eventsRequest(wire, tenant.writeKey));

		expect(response.status).toBe(202);
		// The producer retried the send it believed failed: the queue holds the events twice.
		expect([queue.calls.length, queue.delivered, queue.failed]).toEqual([2, 2, 1]);
		expect(queue.calls[1]).toEqual(queue.calls[0]);
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
			{ timeout: 10_000, interval: 50 },
		);
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: SLICE_ROWS });
		await expectSliceReported(tenant, minute);
	});
});

describe("an alarm that fires twice", () => {
	it("flushes once when two alarms run together, and a later alarm leaves the totals unchanged", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 11 * MINUTE;
		await deliver([eventsMessage(`${tenant.id}/m1`, tenant.id, slice(minute))]);
		const d1 = await runInDurableObject(stub, (instance) => failD1(instance, 0));

		await runInDurableObject(stub, (instance: TenantAggregator) => Promise.all([instance.alarm(), instance.alarm()]));

		expect(d1.calls).toBe(1);
		await expectSliceReported(tenant, minute);
		// What is left is the dedupe window's pruning alarm; running it (twice) writes nothing.
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		await runInDurableObject(stub, (instance: TenantAggregator) => instance.alarm());
		expect(d1.calls).toBe(1);
		expect(await d1Flushes(tenant.id)).toHaveLength(1);
		await expectSliceReported(tenant, minute);
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { consumed: 3, aggregated: 3, flushedRows: SLICE_ROWS }));
	});
});
