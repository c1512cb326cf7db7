// Partial acceptance on the Segment and PostHog APIs end to end: a batch's valid events are counted
// exactly once through the real queue and aggregator, each invalid one is rejected alone (kept
// redacted, with why), counted in the metrics and listed by GET /v1/rejections, also when no event
// is valid; POST /v1/events stays all-or-nothing.
import { afterEach, describe, expect, it, vi } from "vitest";
import { REJECTION_LIMITS } from "../../src/sinks/d1/rejections";
import { call, createTenant, eventsRequest, freezeClockAt, getJson, ingest, jsonBytes } from "../helpers";
import { metricsWith } from "../read/helpers";
import {
	apiError,
	post,
	posthogBatch,
	rejectionsOf,
	rejectionsPage,
	SEGMENT_TYPES,
	segmentBatch,
	send,
	settled,
	storedRejections,
	type SendResult,
} from "./helpers";

afterEach(() => {
	vi.useRealTimers();
	vi.restoreAllMocks();
});

/** Sends with Date frozen at the current time, so the stored receivedAt is known exactly. */
async function sendNow(request: Request): Promise<SendResult & { at: string }> {
	const at = new Date(freezeClockAt(Date.now())).toISOString();
	try {
		return { ...(await send(request)), at };
	} finally {
		vi.useRealTimers();
	}
}

/** What is kept of a message whose JSON passes 8 KB: its start, then the marker, 8 KB in all. */
function truncated(message: unknown): string {
	const marker = `…[truncated from ${jsonBytes(message)} bytes]`;
	return JSON.stringify(message).slice(0, REJECTION_LIMITS.bodyBytes - new TextEncoder().encode(marker).byteLength) + marker;
}

describe("Segment", () => {
	it("accepts a batch's valid events, counts them once end to end, and lists each invalid one with why", async () => {
		const tenant = await createTenant();
		const order = {
			type: "track",
			messageId: "seg-ok-1",
			event: "Order Completed",
			userId: "u1",
			properties: { usage: { sku: "api_calls", quantity: 2, unit: "call" } },
		};
		const big = { type: "track", messageId: "seg-big", event: "big", properties: { pad: "x".repeat(33_000) } };
		const batch = [
			order,
			"not an object",
			{ type: "purchase", messageId: "seg-bad-type", event: "x" },
			{
				type: "track",
				messageId: "seg-bad-qty",
				event: "Order Completed",
				userId: "u1",
				properties: { usage: { sku: "api_calls", quantity: -1 } },
			},
			{ type: "identify", messageId: "seg-ok-2", userId: "u2", traits: { plan: "pro" } },
			{ type: "track", messageId: 42, userId: "u3", properties: { password: "hunter2" } },
			big,
			// Resent within the batch: the aggregator drops it.
			order,
		];
		const result = await sendNow(segmentBatch(tenant, batch));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { success: true } });
		expect(result.events.map((event) => event.id)).toEqual(["seg-ok-1", "seg-ok-2", "seg-ok-1"]);

		const { counts, usage, metrics } = await settled(tenant, 3);
		expect(counts).toEqual({ "Order Completed": 1, $identify: 1 });
		expect(usage).toEqual([{ sku: "api_calls", unit: "call", quantity: 2, events: 1 }]);
		expect(metrics).toMatchObject({ received: 3, rejected: 5, aggregated: 2, duplicatesDropped: metrics.consumed - 2 });

		const at = { receivedAt: result.at, source: "segment" };
		expect(await rejectionsOf(tenant)).toEqual([
			{
				...at,
				eventId: "seg-big",
				place: "batch[6]",
				issues: [{ path: "batch[6]", message: `is ${jsonBytes(big)} bytes, over Segment's 32 KB limit` }],
				body: truncated(big),
			},
			// Redacted as an event's properties are; a numeric messageId lists no eventId.
			{
				...at,
				eventId: null,
				place: "batch[5]",
				issues: [{ path: "batch[5].event", message: "must be a string" }],
				body: { type: "track", messageId: 42, userId: "u3", properties: { password: "[redacted]" } },
			},
			{
				...at,
				eventId: "seg-bad-qty",
				place: "batch[3]",
				issues: [{ path: "batch[3].usage.quantity", message: "must be ≥ 0" }],
				body: batch[3],
			},
			{
				...at,
				eventId: "seg-bad-type",
				place: "batch[2]",
				issues: [{ path: "batch[2].type", message: `must be one of ${SEGMENT_TYPES}` }],
				body: batch[2],
			},
			{
				...at,
				eventId: null,
				place: "batch[1]",
				issues: [{ path: "batch[1]", message: "must be an object" }],
				body: "not an object",
			},
		]);
	});

	it("answers 400 when no event is valid, and still keeps and counts every rejection", async () => {
		const tenant = await createTenant();
		const batch = [
			{ type: "track", messageId: "m-1", userId: "u" },
			["array"],
			{ type: "page", messageId: "m-3", name: "p", userId: true },
		];
		const result = await sendNow(segmentBatch(tenant, batch));
		expect({ status: result.status, body: result.body }).toEqual({
			status: 400,
			body: apiError("invalid_request", "3 invalid events; nothing was accepted", [
				{ index: 0, path: "batch[0].event", message: "must be a string" },
				{ index: 1, path: "batch[1]", message: "must be an object" },
				{ index: 2, path: "batch[2].userId", message: "must be a string" },
			]),
		});
		expect(result.events).toEqual([]);
		const at = { receivedAt: result.at, source: "segment" };
		expect(await rejectionsOf(tenant)).toEqual([
			{
				...at,
				eventId: "m-3",
				place: "batch[2]",
				issues: [{ path: "batch[2].userId", message: "must be a string" }],
				body: batch[2],
			},
			{ ...at, eventId: null, place: "batch[1]", issues: [{ path: "batch[1]", message: "must be an object" }], body: ["array"] },
			{ ...at, eventId: "m-1", place: "batch[0]", issues: [{ path: "batch[0].event", message: "must be a string" }], body: batch[0] },
		]);
		expect(await getJson("/v1/metrics", tenant.readKey)).toEqual(metricsWith(tenant, { rejected: 3 }));
	});

	it("keeps a single call's body under place $ without its write key or redacted properties", async () => {
		const tenant = await createTenant();
		const body = {
			writeKey: tenant.writeKey,
			messageId: "one",
			event: 7,
			properties: { nested: { token: "t-1", apiKey: "k-1", kept: 1 } },
		};
		const result = await sendNow(post("/v1/track", body));
		expect({ status: result.status, body: result.body }).toEqual({
			status: 400,
			body: apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "$.event", message: "must be a string" },
			]),
		});
		expect(await rejectionsOf(tenant)).toEqual([
			{
				receivedAt: result.at,
				source: "segment",
				eventId: "one",
				place: "$",
				issues: [{ path: "$.event", message: "must be a string" }],
				body: {
					writeKey: "[redacted]",
					messageId: "one",
					event: 7,
					properties: { nested: { token: "[redacted]", apiKey: "[redacted]", kept: 1 } },
				},
			},
		]);
		expect(await storedRejections(tenant.id, `instr(body, '${tenant.writeKey}') > 0`)).toBe(0);
	});
});

describe("PostHog", () => {
	it("accepts a batch's valid events, counts them once end to end, and lists each invalid one with why", async () => {
		const tenant = await createTenant();
		const U = (n: number) => `0192e4a0-0000-7000-8000-00000000a00${n}`;
		const batch = [
			{ event: "signed_up", distinct_id: "u1", uuid: U(1), properties: { usage: { sku: "tokens", quantity: 1.5 } } },
			null,
			{ event: "bad_quantity", distinct_id: "u1", uuid: U(2), properties: { usage: { sku: "tokens", quantity: 0.0000001 } } },
			{ event: "$pageview", distinct_id: "u2", uuid: U(3), properties: { $current_url: "https://example.com/" } },
			{ distinct_id: { id: 1 }, uuid: U(4), properties: { token: tenant.writeKey, $lib: "posthog-js" } },
		];
		const result = await sendNow(posthogBatch(tenant, batch));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { status: 1 } });
		expect(result.events.map((event) => event.id)).toEqual([U(1), U(3)]);

		const { counts, usage, metrics } = await settled(tenant, 2);
		expect(counts).toEqual({ signed_up: 1, $pageview: 1 });
		expect(usage).toEqual([{ sku: "tokens", unit: "unit", quantity: 1.5, events: 1 }]);
		expect(metrics).toMatchObject({ received: 2, rejected: 3, aggregated: 2, duplicatesDropped: metrics.consumed - 2 });

		const at = { receivedAt: result.at, source: "posthog" };
		expect(await rejectionsOf(tenant)).toEqual([
			{
				...at,
				eventId: U(4),
				place: "batch[4]",
				issues: [
					{ path: "batch[4].event", message: "must be a string" },
					{ path: "batch[4].userId", message: "must be a string" },
				],
				body: { distinct_id: { id: 1 }, uuid: U(4), properties: { token: "[redacted]", $lib: "posthog-js" } },
			},
			{
				...at,
				eventId: U(2),
				place: "batch[2]",
				issues: [{ path: "batch[2].usage.quantity", message: "has more than 6 fraction digits" }],
				body: batch[2],
			},
			{ ...at, eventId: null, place: "batch[1]", issues: [{ path: "batch[1]", message: "must be an object" }], body: null },
		]);
	});

	it("answers 400 for a single invalid /capture/ event, and still keeps and counts it", async () => {
		const tenant = await createTenant();
		const result = await sendNow(post("/capture/", { api_key: tenant.writeKey, event: "", distinct_id: "u", uuid: "c-1" }));
		expect({ status: result.status, body: result.body }).toEqual({
			status: 400,
			body: apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].event", message: "must be 1-200 characters" },
			]),
		});
		expect(await rejectionsOf(tenant)).toEqual([
			{
				receivedAt: result.at,
				source: "posthog",
				eventId: "c-1",
				place: "batch[0]",
				issues: [{ path: "batch[0].event", message: "must be 1-200 characters" }],
				body: { api_key: "[redacted]", event: "", distinct_id: "u", uuid: "c-1" },
			},
		]);
		expect(await getJson("/v1/metrics", tenant.readKey)).toEqual(metricsWith(tenant, { rejected: 1 }));
	});
});

describe("POST /v1/events", () => {
	it("stays all-or-nothing: one invalid event refuses the batch, and nothing is kept as a rejection", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(
			eventsRequest(JSON.stringify({ events: [{ event: "ok" }, { event: 7 }] }), tenant.writeKey),
		);
		expect({ status: response.status, body: await response.json() }).toEqual({
			status: 400,
			body: apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 1, path: "event", message: "must be a string" },
			]),
		});
		expect(queue.calls).toEqual([]);
		expect(await rejectionsPage(tenant)).toEqual({ items: [], nextCursor: null });
		expect(await getJson("/v1/metrics", tenant.readKey)).toEqual(metricsWith(tenant));
	});
});
