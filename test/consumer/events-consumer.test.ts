// The consumer groups a batch by tenant, makes one ingest RPC per tenant, and acks a message only
// once its tenant's aggregator has made the slice durable; otherwise it retries with backoff.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { EXACT_MICROS } from "../aggregator/helpers";
import { uniqueTenantId } from "../helpers";
import { breakAggregatorOf, deliver, eventsMessage, loggingAggregators, QUEUE, queuedEvent, recentHour, seenIds } from "./helpers";

afterEach(() => {
	vi.restoreAllMocks();
});

describe("events consumer", () => {
	it("makes one ingest RPC per tenant per batch and acks every message", async () => {
		const [a, b] = [uniqueTenantId("a"), uniqueTenantId("b")];
		const ev = (id: string) => queuedEvent({ id });
		const batch = createMessageBatch(QUEUE, [
			eventsMessage("m1", a, [ev("a1"), ev("a2")]),
			eventsMessage("m2", b, [ev("b1")]),
			eventsMessage("m3", a, [ev("a3")]),
			eventsMessage("m4", b, [ev("b2"), ev("b3")]),
			eventsMessage("m5", a, [ev("a4")]),
		]);
		const { namespace, log } = loggingAggregators();
		const ctx = createExecutionContext();

		await worker.queue(batch, { ...env, AGGREGATOR: namespace }, ctx);
		const result = await getQueueResult(batch, ctx);

		expect([...log.getByName].sort()).toEqual([a, b].sort());
		expect([...log.ingest].sort((x, y) => x.name.localeCompare(y.name))).toEqual(
			[
				{ name: a, tenant: a, ids: ["a1", "a2", "a3", "a4"] },
				{ name: b, tenant: b, ids: ["b1", "b2", "b3"] },
			].sort((x, y) => x.name.localeCompare(y.name)),
		);
		expect(result).toEqual({
			outcome: "ok",
			ackAll: false,
			retryBatch: { retry: false },
			explicitAcks: ["m1", "m2", "m3", "m4", "m5"],
			retryMessages: [],
		});
		// Acked means durable: each aggregator has recorded exactly its own tenant's events.
		expect(await seenIds(a)).toEqual(["a1", "a2", "a3", "a4"]);
		expect(await seenIds(b)).toEqual(["b1", "b2", "b3"]);
	});

	it("acks through the Worker's real queue entry point", async () => {
		const tenant = uniqueTenantId();
		const result = await deliver([eventsMessage("only", tenant, [queuedEvent({ id: "e1" }), queuedEvent({ id: "e2" })])]);

		expect(result).toEqual({ outcome: "ok", ackAll: false, retryBatch: { retry: false }, explicitAcks: ["only"], retryMessages: [] });
		expect(await seenIds(tenant)).toEqual(["e1", "e2"]);
	});

	it("retries every message of a tenant whose aggregator rejects the slice, with backoff from its attempts", async () => {
		const [healthy, broken] = [uniqueTenantId("ok"), uniqueTenantId("broken")];
		await breakAggregatorOf(broken);
		// Jitter at its midpoint: delay = round(step × 0.75), step = 2 s × 2^(attempts − 1), capped at 600 s.
		vi.spyOn(Math, "random").mockReturnValue(0.5);

		const result = await deliver([
			eventsMessage("h1", healthy, [queuedEvent({ id: "h-1" })], 1),
			eventsMessage("x1", broken, [queuedEvent({ id: "x-1" })], 1),
			eventsMessage("x3", broken, [queuedEvent({ id: "x-3" })], 3),
			eventsMessage("h2", healthy, [queuedEvent({ id: "h-2" })], 4),
			eventsMessage("x9", broken, [queuedEvent({ id: "x-9" })], 9),
		]);

		expect(result.explicitAcks).toEqual(["h1", "h2"]);
		expect(result.retryMessages).toEqual([
			{ msgId: "x1", delaySeconds: 2 },
			{ msgId: "x3", delaySeconds: 6 },
			{ msgId: "x9", delaySeconds: 384 },
		]);
		expect(result.ackAll).toBe(false);
		expect(result.retryBatch).toEqual({ retry: false });
		expect(await seenIds(healthy)).toEqual(["h-1", "h-2"]);
		// The rejected slice left nothing behind.
		expect(await seenIds(broken)).toEqual([]);
	});

	it("retries after the shortest delay when jitter draws its minimum", async () => {
		const broken = uniqueTenantId("broken");
		await breakAggregatorOf(broken);
		vi.spyOn(Math, "random").mockReturnValue(0);

		const result = await deliver([
			eventsMessage("first", broken, [queuedEvent()], 1),
			eventsMessage("fifth", broken, [queuedEvent()], 5),
		]);

		expect(result.explicitAcks).toEqual([]);
		expect(result.retryMessages).toEqual([
			{ msgId: "first", delaySeconds: 1 },
			{ msgId: "fifth", delaySeconds: 16 },
		]);
	});

	it("acks a redelivered message without counting its events twice", async () => {
		const tenant = uniqueTenantId();
		const hour = recentHour();
		const events = Array.from({ length: 10 }, (_, i) =>
			queuedEvent({ id: `r${i}`, timestamp: hour + i * 60_000, usage: { sku: "tokens", unit: "token", micros: 100_000 } }),
		);
		const first = await deliver([eventsMessage("m1", tenant, events.slice(0, 6)), eventsMessage("m2", tenant, events.slice(6))]);
		// m2 comes back (say its ack was lost), together with a new message that repeats r0.
		const extra = queuedEvent({ id: "r10", timestamp: hour, usage: { sku: "tokens", unit: "token", micros: 1 } });
		const second = await deliver([eventsMessage("m2", tenant, events.slice(6), 2), eventsMessage("m3", tenant, [events[0]!, extra])]);

		expect(first.explicitAcks).toEqual(["m1", "m2"]);
		expect(second.explicitAcks).toEqual(["m2", "m3"]);
		expect(second.retryMessages).toEqual([]);
		expect(await seenIds(tenant)).toEqual(["r0", "r1", "r10", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"]);

		await env.AGGREGATOR.getByName(tenant).flush();
		const { results } = await env.DB.prepare(`SELECT sku, unit, hour, ${EXACT_MICROS}, events FROM usage_rollups WHERE tenant = ?1`)
			.bind(tenant)
			.all();
		expect(results).toEqual([{ sku: "tokens", unit: "token", hour: new Date(hour).toISOString(), micros: "1000001", events: 11 }]);
	});
});
