// The dead-letter path end to end through the real local queues: a message that fails every
// delivery lands in D1's dead_letters (max_retries 2 in the test config), is listed by the admin
// API, and once the fault is gone a replay counts it exactly once; replaying it again enqueues
// nothing. The admin API pages through dead letters and discards one.
import { describe, expect, it, vi } from "vitest";
import {
	breakAggregatorOf,
	deadLetterRows,
	deliver,
	ISO_INSTANT,
	listDeadLetters,
	rawMessage,
	replay,
	type DeadLetterItem,
} from "../consumer/helpers";
import { ADMIN_TOKEN, call, createTenant, ingest, postJson, useFrozenClock, type TestTenant } from "../helpers";
import { flushVia, HOUR, iso, metricsOf, metricsWith, MINUTE, statsOf, usageOf } from "../read/helpers";
import { failAggregatorWrites, freezeClock, previousHour, restoreIngest } from "./helpers";
import type { TenantMetrics } from "../../src/read/metrics";

const clock = useFrozenClock(freezeClock);

const MAX_RETRIES_EXHAUSTED = "delivery failed on every retry (max_retries exhausted)";

/** Waits until the tenant has `count` dead letters; three deliveries 1 s and 2 s apart take about 3 s. */
async function deadLettersOf(tenant: string, count: number): Promise<DeadLetterItem[]> {
	return vi.waitFor(
		async () => {
			const { items } = await listDeadLetters(`?tenant=${tenant}`);
			expect(items).toHaveLength(count);
			return items;
		},
		{ timeout: 20_000, interval: 100 },
	);
}

async function metricsBecome(tenant: TestTenant, expected: Partial<TenantMetrics>): Promise<void> {
	await vi.waitFor(async () => expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, expected)), { timeout: 10_000, interval: 50 });
}

/**
 * The rows one flush of the two events writes: 1 usage and 1 event row, and 15 series rows:
 * api_call's total, route "", status 500 and "", country "" (5) × minute, hour, day.
 */
const TWO_EVENTS_ROWS = 2 + 15;

/** Two metered events POSTed in one request: one queue message. */
function twoEvents(minute: number) {
	const wire = [
		{
			id: "d1",
			event: "api_call",
			timestamp: minute,
			usage: { sku: "tokens", unit: "token", quantity: 2.5 },
			performance: { duration: 7, statusCode: 500 },
		},
		{ id: "d2", event: "api_call", timestamp: minute, usage: { sku: "tokens", unit: "token", quantity: 0.5 } },
	];
	const queued = [
		{
			id: "d1",
			event: "api_call",
			timestamp: minute,
			performance: { duration: 7, statusCode: 500 },
			usage: { sku: "tokens", unit: "token", micros: 2_500_000 },
		},
		{ id: "d2", event: "api_call", timestamp: minute, usage: { sku: "tokens", unit: "token", micros: 500_000 } },
	];
	return { wire, queued };
}

async function expectTwoEventsReported(tenant: TestTenant, minute: number): Promise<void> {
	const hour = previousHour(clock.start);
	expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
		{ sku: "tokens", unit: "token", period: iso(hour), quantity: 3, quantityDecimal: "3", events: 2 },
	]);
	expect(await statsOf(tenant, hour, hour + HOUR)).toEqual([
		{ event: "api_call", period: iso(minute), count: 2, errors: 1, duration: { count: 1, sum: 7, min: 7, max: 7 } },
	]);
}

describe("a message that fails every delivery", () => {
	it("reaches dead_letters after max_retries, is counted once when replayed by id, and is skipped by a second replay", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 40 * MINUTE;
		const { wire, queued } = twoEvents(minute);
		await breakAggregatorOf(tenant.id);
		// Jitter at its minimum: redeliveries after 1 s and 2 s, then the dead-letter queue.
		vi.spyOn(Math, "random").mockReturnValue(0);

		expect((await postJson("/v1/events", { events: wire }, tenant.writeKey)).status).toBe(202);

		const [item] = await deadLettersOf(tenant.id, 1);
		// A message the platform moved carries its original body; its attempts are its deliveries on the dead-letter queue.
		expect(item).toEqual({
			id: expect.stringMatching(/^[0-9a-f]{32}$/),
			tenant: tenant.id,
			error: MAX_RETRIES_EXHAUSTED,
			attempts: 1,
			firstFailedAt: expect.stringMatching(ISO_INSTANT),
			lastFailedAt: expect.stringMatching(ISO_INSTANT),
			replayedAt: null,
			body: { v: 1, tenant: tenant.id, events: queued },
		});
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { received: 2, enqueued: 2, deadLettered: 1 }));

		// The fault is fixed; the replay goes through the real queue to the repaired aggregator.
		await restoreIngest(tenant.id);
		const replayedAt = iso(Date.now());
		expect(await replay({ ids: [item!.id] })).toEqual({ replayed: [item!.id], skipped: [] });
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items).toEqual([{ ...item, replayedAt }]);
		await metricsBecome(tenant, {
			received: 2,
			enqueued: 2,
			consumed: 2,
			aggregated: 2,
			deadLettered: 1,
			replayed: 1,
			oldestUnflushedAgeMs: expect.any(Number),
		});
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: TWO_EVENTS_ROWS });
		await expectTwoEventsReported(tenant, minute);

		// A second replay of the same dead letter enqueues nothing: the row says when it was replayed.
		const { response, queue } = await ingest(
			new Request("https://meterline.test/v1/admin/dead-letters/replay", {
				method: "POST",
				body: JSON.stringify({ ids: [item!.id] }),
				headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
			}),
		);
		expect({ status: response.status, body: await response.json() }).toEqual({
			status: 200,
			body: { replayed: [], skipped: [{ id: item!.id, reason: `already replayed at ${replayedAt}` }] },
		});
		expect(queue.calls).toEqual([]);
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items).toEqual([{ ...item, replayedAt }]);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: 2,
				enqueued: 2,
				consumed: 2,
				aggregated: 2,
				flushedRows: TWO_EVENTS_ROWS,
				deadLettered: 1,
				replayed: 1,
			}),
		);
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 0 });
		await expectTwoEventsReported(tenant, minute);
		// Nothing of the tenant's is left unreplayed.
		expect(await replay({ tenant: tenant.id })).toEqual({ replayed: [], skipped: [] });
	});

	it("is replayed by tenant once its aggregator works again, after exactly three failed deliveries", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 41 * MINUTE;
		const { wire, queued } = twoEvents(minute);
		// The aggregator refuses its next three ingests: the first delivery and both retries.
		const rpc = await failAggregatorWrites(tenant.id, 3, "before-commit");
		vi.spyOn(Math, "random").mockReturnValue(0);

		expect((await postJson("/v1/events", { events: wire }, tenant.writeKey)).status).toBe(202);

		const [item] = await deadLettersOf(tenant.id, 1);
		expect(rpc).toEqual({ calls: 3, failed: 3 });
		expect(item!.body).toEqual({ v: 1, tenant: tenant.id, events: queued });
		expect(item!.error).toBe(MAX_RETRIES_EXHAUSTED);

		expect(await replay({ tenant: tenant.id })).toEqual({ replayed: [item!.id], skipped: [] });
		await metricsBecome(tenant, {
			received: 2,
			enqueued: 2,
			consumed: 2,
			aggregated: 2,
			deadLettered: 1,
			replayed: 1,
			oldestUnflushedAgeMs: expect.any(Number),
		});
		expect(rpc).toEqual({ calls: 4, failed: 3 });
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: TWO_EVENTS_ROWS });
		await expectTwoEventsReported(tenant, minute);
		// A tenant replay takes only what was not replayed yet.
		expect(await replay({ tenant: tenant.id })).toEqual({ replayed: [], skipped: [] });
	});
});

describe("the admin API", () => {
	it("pages through a tenant's dead letters with a cursor, and discards one with DELETE", async () => {
		const tenant = await createTenant();
		const ids = Array.from({ length: 5 }, (_, i) => `${tenant.id}.p${i}`);
		const result = await deliver(ids.map((id) => rawMessage(id, { v: 1, tenant: tenant.id, events: "none" })));
		expect(result.explicitAcks).toEqual(ids);
		await deadLettersOf(tenant.id, 5);

		const first = await listDeadLetters(`?tenant=${tenant.id}&limit=2`);
		expect(first.items.map((item) => item.id)).toEqual(ids.slice(0, 2));
		expect(first.nextCursor).toMatch(/^\d+$/);
		const second = await listDeadLetters(`?tenant=${tenant.id}&limit=2&cursor=${first.nextCursor}`);
		expect(second.items.map((item) => item.id)).toEqual(ids.slice(2, 4));
		expect(Number(second.nextCursor)).toBeGreaterThan(Number(first.nextCursor));
		const third = await listDeadLetters(`?tenant=${tenant.id}&limit=2&cursor=${second.nextCursor}`);
		expect(third.items.map((item) => item.id)).toEqual(ids.slice(4));
		expect(third.nextCursor).toBeNull();
		expect(third.items[0]).toEqual({
			id: ids[4],
			tenant: tenant.id,
			error: "undecodable message: events is not an array",
			attempts: 1,
			firstFailedAt: "2026-11-20T00:00:00.000Z",
			lastFailedAt: expect.stringMatching(ISO_INSTANT),
			replayedAt: null,
			body: { v: 1, tenant: tenant.id, events: "none" },
		});
		const bad = await call(`/v1/admin/dead-letters?tenant=${tenant.id}&limit=0`, { key: ADMIN_TOKEN });
		expect(bad.status).toBe(400);
		expect(await bad.json()).toEqual({
			error: {
				code: "invalid_request",
				message: "limit: must be an integer 1-100",
				details: [{ path: "limit", message: "must be an integer 1-100" }],
			},
		});

		const discarded = await call(`/v1/admin/dead-letters/${ids[2]}`, { method: "DELETE", key: ADMIN_TOKEN });
		expect(discarded.status).toBe(204);
		expect(await discarded.text()).toBe("");
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items.map((item) => item.id)).toEqual([ids[0], ids[1], ids[3], ids[4]]);
		expect(await deadLetterRows(ids[2]!)).toEqual([]);
		const again = await call(`/v1/admin/dead-letters/${ids[2]}`, { method: "DELETE", key: ADMIN_TOKEN });
		expect(again.status).toBe(404);
		expect(await again.json()).toEqual({ error: { code: "not_found", message: `No dead letter ${ids[2]}` } });
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { deadLettered: 4 }));
		// Without the admin token nothing is listed or discarded.
		expect((await call(`/v1/admin/dead-letters?tenant=${tenant.id}`, { key: tenant.readKey })).status).toBe(401);
		expect((await call(`/v1/admin/dead-letters/${ids[3]}`, { method: "DELETE", key: tenant.writeKey })).status).toBe(401);
	});
});
