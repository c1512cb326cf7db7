// Events an aggregator refuses to count (older than the dedupe window, or past a cap) are acked out
// of the events queue only once the dead-letter queue has them, where D1 keeps them for inspection.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { REFUSED_EXPIRED } from "../../src/aggregator/ingest";
import { DEDUPE_WINDOW_MS } from "../../src/event/model";
import worker from "../../src/index";
import { createTenant } from "../helpers";
import { metricsOf, metricsWith } from "../read/helpers";
import { deliver, eventsMessage, queuedEvent, recentHour } from "./helpers";

/** The dead_letters row, once the real dead-letter queue's consumer has stored it. */
function deadLetter(id: string): Promise<{ id: string; tenant: string; error: string; body: string }> {
	return vi.waitFor(
		async () => {
			const row = await env.DB.prepare("SELECT id, tenant, error, body FROM dead_letters WHERE id = ?1")
				.bind(id)
				.first<{ id: string; tenant: string; error: string; body: string }>();
			if (!row) throw new Error(`no dead letter ${id} yet`);
			return row;
		},
		{ timeout: 10_000, interval: 50 },
	);
}

describe("refused events", () => {
	it("dead-letters an event older than the dedupe window with its reason, and counts the rest", async () => {
		const tenant = await createTenant();
		const expired = queuedEvent({ id: "too-old", timestamp: Date.now() - DEDUPE_WINDOW_MS - 60_000 });
		const fresh = queuedEvent({ id: "fresh", timestamp: recentHour() });

		const outcome = await deliver([eventsMessage(`${tenant.id}/m1`, tenant.id, [expired, fresh])]);

		expect(outcome.explicitAcks).toEqual([`${tenant.id}/m1`]);
		const row = await deadLetter(`${tenant.id}/m1:expired`);
		expect({ ...row, body: JSON.parse(row.body).json }).toEqual({
			id: `${tenant.id}/m1:expired`,
			tenant: tenant.id,
			error: REFUSED_EXPIRED,
			body: { v: 1, tenant: tenant.id, events: [expired] },
		});
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: 2, aggregated: 1, expired: 1, deadLettered: 1, oldestUnflushedAgeMs: expect.any(Number) }),
		);

		// A redelivery refuses it again and stores the same row, not a second one.
		expect((await deliver([eventsMessage(`${tenant.id}/m1`, tenant.id, [expired, fresh], 2)])).explicitAcks).toEqual([
			`${tenant.id}/m1`,
		]);
		await vi.waitFor(async () => expect((await metricsOf(tenant)).expired).toBe(2), { timeout: 10_000, interval: 50 });
		const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM dead_letters WHERE tenant = ?1")
			.bind(tenant.id)
			.first<{ n: number }>())!;
		expect(n).toBe(1);
	});

	it("retries the message when the dead-letter queue refuses its refused events", async () => {
		const tenant = await createTenant();
		const expired = queuedEvent({ id: "too-old", timestamp: Date.now() - DEDUPE_WINDOW_MS - 60_000 });
		const failing = { ...env, DEAD_LETTERS: { send: () => Promise.reject(new Error("queue unavailable")) } as unknown as Queue };
		const batch = createMessageBatch("meterline-events", [
			{ id: `${tenant.id}/m2`, timestamp: new Date(), attempts: 1, body: { v: 1, tenant: tenant.id, events: [expired] } },
		]);
		const ctx = createExecutionContext();

		await worker.queue(batch, failing, ctx);

		const result = await getQueueResult(batch, ctx);
		expect(result.explicitAcks).toEqual([]);
		expect(result.retryMessages.map((m) => m.msgId)).toEqual([`${tenant.id}/m2`]);
	});
});
