// The producer's hand-off to the queue: 202 at once, then the accepted events packed into few messages.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { EventsMessage, QueuedEvent } from "../../src/event/model";
import { QUEUE_LIMITS } from "../../src/event/pack";
import { createTenant, deferred, eventsRequest, fetchWith, ingest, jsonBytes, RecordingQueue, UUID_V7 } from "../helpers";

const MAX_BODY = 1_048_576;

/** The millisecond time a UUIDv7 carries in its first 48 bits. */
const uuidMs = (id: string) => parseInt(id.replace(/-/g, "").slice(0, 12), 16);

describe("202 before the send", () => {
	// If the handler awaited the send, its answer would wait on the closed gate and the test would time out.
	it("answers 202 with the ids while the queue send is still held back", { timeout: 10_000 }, async () => {
		const tenant = await createTenant();
		const gate = deferred();
		const queue = new RecordingQueue({ gate: gate.promise });
		const ctx = createExecutionContext();
		const now = Date.now();
		const events = [
			{ id: "order-1", event: "checkout", timestamp: now - 1_000, userId: "u1", usage: { sku: "tokens", quantity: 1.5 } },
			{
				event: "page_view",
				timestamp: new Date(now - 2_000).toISOString(),
				sessionId: "s1",
				properties: { path: "/" },
				performance: { duration: 12.5, statusCode: 200 },
			},
			{ id: "order-2", event: "refund", usage: { sku: "tokens", quantity: 0.000001, unit: "token" } },
			{ event: "heartbeat" },
		];

		const response = await fetchWith(eventsRequest(JSON.stringify({ events }), tenant.writeKey), queue, ctx);
		expect(response.status).toBe(202);
		const body = await response.json<{ accepted: number; ids: string[] }>();
		expect(body).toEqual({ accepted: 4, ids: ["order-1", expect.stringMatching(UUID_V7), "order-2", expect.stringMatching(UUID_V7)] });
		expect(new Set(body.ids).size).toBe(4);
		expect(queue.delivered).toBe(0);

		gate.resolve();
		await waitOnExecutionContext(ctx);
		expect(queue.failed).toBe(0);
		expect(queue.delivered).toBe(queue.calls.length);
		// Events without a timestamp take the receive time, the same instant their UUIDv7 carries.
		const received = uuidMs(body.ids[3]!);
		expect(queue.messages).toEqual<EventsMessage[]>([
			{
				v: 1,
				tenant: tenant.id,
				events: [
					{
						id: "order-1",
						event: "checkout",
						timestamp: now - 1_000,
						userId: "u1",
						usage: { sku: "tokens", unit: "unit", micros: 1_500_000 },
					},
					{
						id: body.ids[1]!,
						event: "page_view",
						timestamp: now - 2_000,
						sessionId: "s1",
						properties: { path: "/" },
						performance: { duration: 12.5, statusCode: 200 },
					},
					{ id: "order-2", event: "refund", timestamp: received, usage: { sku: "tokens", unit: "token", micros: 1 } },
					{ id: body.ids[3]!, event: "heartbeat", timestamp: received },
				],
			},
		]);
	});
});

/** The fewest messages an order-keeping packer can use: greedy filling is optimal for contiguous runs. */
function fewestMessages(tenant: string, events: QueuedEvent[]): number {
	const envelope = jsonBytes({ v: 1, tenant, events: [] });
	let count = 0;
	let bytes = 0;
	for (const event of events) {
		const size = jsonBytes(event);
		if (bytes > 0 && bytes + 1 + size > QUEUE_LIMITS.messageBytes) bytes = 0;
		if (bytes === 0) {
			count++;
			bytes = envelope + size;
		} else bytes += 1 + size;
	}
	return count;
}

/** The fewest sendBatch calls for messages of these sizes, in order. */
function fewestBatches(sizes: number[]): number {
	let count = 0;
	let messages = 0;
	let bytes = 0;
	for (const size of sizes) {
		if (messages === 0 || messages === QUEUE_LIMITS.batchMessages || bytes + size > QUEUE_LIMITS.batchBytes) {
			count++;
			messages = 0;
			bytes = 0;
		}
		messages++;
		bytes += size;
	}
	return count;
}

/** 1000 events of varied size, `padChars` copies of `ch` (plus a varying tail) in properties each. */
function bigBatch(now: number, ch: string, padChars: number) {
	return Array.from({ length: 1000 }, (_, i) => ({
		id: `e${String(i).padStart(4, "0")}`,
		event: "bulk",
		timestamp: now,
		properties: { pad: ch.repeat(padChars + ((i * 37) % 50)) },
	}));
}

async function sendBigBatch(ch: string, padChars: number) {
	const tenant = await createTenant();
	const events = bigBatch(Date.now(), ch, padChars);
	const text = JSON.stringify({ events });
	expect(new TextEncoder().encode(text).byteLength).toBeLessThanOrEqual(MAX_BODY);
	const { response, queue } = await ingest(eventsRequest(text, tenant.writeKey));
	expect(response.status).toBe(202);
	expect((await response.json<{ accepted: number }>()).accepted).toBe(1000);
	return { tenant, events, queue };
}

function expectWithinQueueLimits(queue: RecordingQueue, tenant: string): void {
	for (const call of queue.calls) {
		expect(call.length).toBeLessThanOrEqual(QUEUE_LIMITS.batchMessages);
		expect(call.reduce((sum, body) => sum + jsonBytes(body), 0)).toBeLessThanOrEqual(QUEUE_LIMITS.batchBytes);
		for (const body of call) {
			expect(body.v).toBe(1);
			expect(body.tenant).toBe(tenant);
			expect(jsonBytes(body)).toBeLessThanOrEqual(QUEUE_LIMITS.messageBytes);
		}
	}
}

describe("packing", () => {
	it("packs 1000 large events into the fewest messages within the queue limits", async () => {
		const { tenant, events, queue } = await sendBigBatch("x", 850);
		expect(queue.failed).toBe(0);
		expectWithinQueueLimits(queue, tenant.id);

		const sent = queue.messages.flatMap((body) => body.events);
		expect(sent.map((event) => event.id)).toEqual(events.map((event) => event.id));
		expect(queue.messages.length).toBe(fewestMessages(tenant.id, sent));
		expect(queue.messages.length).toBeGreaterThan(1);
		expect(queue.calls.length).toBe(fewestBatches(queue.messages.map(jsonBytes)));
	});

	it("keeps messages within the limits in bytes when events hold 4-byte characters", async () => {
		const { tenant, events, queue } = await sendBigBatch("😀", 210);
		expectWithinQueueLimits(queue, tenant.id);
		expect(queue.failed).toBe(0);
		expect(queue.messages.flatMap((body) => body.events.map((event) => event.id))).toEqual(events.map((event) => event.id));
	});
});
