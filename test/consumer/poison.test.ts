// Undecodable queue bodies: each is retried on its own (the queue moves it to the dead-letter
// queue after max_retries) while the rest of its batch is still accepted and acked.
import { afterEach, describe, expect, it, vi } from "vitest";
import { uniqueTenantId } from "../helpers/api";
import { deliver, eventsMessage, queuedEvent, rawMessage, seenIds } from "./fixtures";

afterEach(() => {
	vi.restoreAllMocks();
});

describe("poison messages", () => {
	it("retries each undecodable message with backoff and acks the rest of the batch", async () => {
		const tenant = uniqueTenantId();
		const good = (id: string) => queuedEvent({ id });
		// Jitter at its minimum: delay = max(1, step / 2), step = 2 s × 2^(attempts − 1), capped at 300 s.
		vi.spyOn(Math, "random").mockReturnValue(0);

		const result = await deliver([
			rawMessage("text", "not an events message", 1),
			rawMessage("null", null, 2),
			rawMessage("v2", { v: 2, tenant, events: [good("v2-ok")] }, 3),
			eventsMessage("valid", tenant, [good("ok-1"), good("ok-2")], 1),
			rawMessage("no-tenant", { v: 1, tenant: "", events: [good("nt-ok")] }, 4),
			rawMessage("events-not-array", { v: 1, tenant, events: "ok-3" }, 5),
			rawMessage("numeric-id", { v: 1, tenant, events: [{ id: 7, event: "api_call", timestamp: Date.UTC(2026, 10, 20) }] }, 6),
			rawMessage("float-timestamp", { v: 1, tenant, events: [good("ft-ok"), { ...good("ft-bad"), timestamp: 1.5 }] }, 7),
			rawMessage("text-micros", { v: 1, tenant, events: [{ ...good("tm"), usage: { sku: "tokens", unit: "token", micros: "100" } }] }, 8),
			rawMessage("no-unit", { v: 1, tenant, events: [{ ...good("nu"), usage: { sku: "tokens", micros: 100 } }] }, 12),
		]);

		expect(result.explicitAcks).toEqual(["valid"]);
		expect(result.retryMessages).toEqual([
			{ msgId: "text", delaySeconds: 1 },
			{ msgId: "null", delaySeconds: 2 },
			{ msgId: "v2", delaySeconds: 4 },
			{ msgId: "no-tenant", delaySeconds: 8 },
			{ msgId: "events-not-array", delaySeconds: 16 },
			{ msgId: "numeric-id", delaySeconds: 32 },
			{ msgId: "float-timestamp", delaySeconds: 64 },
			{ msgId: "text-micros", delaySeconds: 128 },
			{ msgId: "no-unit", delaySeconds: 150 },
		]);
		expect(result.ackAll).toBe(false);
		expect(result.retryBatch).toEqual({ retry: false });
		// Only the valid message reached the aggregator: a bad message is refused whole, even its good events.
		expect(await seenIds(tenant)).toEqual(["ok-1", "ok-2"]);
	});

	it("retries a message whose performance fields are not numbers", async () => {
		// The aggregator sums and compares durations as numbers; text would be stored in the
		// rollups (and flushed to D1) as a string, so such a body is as undecodable as bad usage.
		const tenant = uniqueTenantId();
		vi.spyOn(Math, "random").mockReturnValue(0);

		const result = await deliver([
			rawMessage("text-duration", { v: 1, tenant, events: [{ ...queuedEvent({ id: "p1" }), performance: { duration: "slow" } }] }, 1),
			rawMessage("text-status", { v: 1, tenant, events: [{ ...queuedEvent({ id: "p2" }), performance: { statusCode: "503" } }] }, 2),
		]);

		expect(result.explicitAcks).toEqual([]);
		expect(result.retryMessages).toEqual([
			{ msgId: "text-duration", delaySeconds: 1 },
			{ msgId: "text-status", delaySeconds: 2 },
		]);
		expect(await seenIds(tenant)).toEqual([]);
	});
});
