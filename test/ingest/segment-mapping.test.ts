// Segment's HTTP Tracking API, mapped: each call type becomes exactly one Meterline event (with
// HTTP Basic or writeKey in the body), a batch maps every type, and timestamps are corrected by
// sentAt for a client clock that runs behind or ahead.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant, UUID_V7 } from "../helpers";
import { CORRECTED, post, receiveAtFrozenTime, RECEIVED, segmentAuth, send, SENT_AT, TIMESTAMP } from "./helpers";

const CONTEXT = { library: { name: "analytics-node", version: "3.1.0" }, ip: "203.0.113.9", locale: "en-GB" };

describe("mapping", () => {
	receiveAtFrozenTime();

	const cases: [path: string, message: Record<string, unknown>, expected: QueuedEvent][] = [
		[
			"/v1/track",
			{
				type: "track",
				messageId: "seg-track-1",
				event: "Order Completed",
				userId: "user-1",
				anonymousId: "anon-1",
				properties: { plan: "pro", total: 12.5, usage: { sku: "api_calls", quantity: 2.5, unit: "call" } },
			},
			{
				id: "seg-track-1",
				event: "Order Completed",
				userId: "user-1",
				timestamp: CORRECTED,
				properties: { plan: "pro", total: 12.5, context: CONTEXT },
				usage: { sku: "api_calls", unit: "call", micros: 2_500_000 },
			},
		],
		[
			"/v1/identify",
			{ type: "identify", messageId: "seg-identify-1", anonymousId: "anon-7", traits: { plan: "pro", seats: 3 } },
			{
				id: "seg-identify-1",
				event: "$identify",
				userId: "anon-7",
				timestamp: CORRECTED,
				properties: { plan: "pro", seats: 3, context: CONTEXT },
			},
		],
		[
			"/v1/page",
			{
				type: "page",
				messageId: "seg-page-1",
				userId: "user-1",
				name: "Pricing",
				properties: { path: "/pricing", usage: { sku: "page_views", quantity: 1 } },
			},
			{
				id: "seg-page-1",
				event: "$page",
				userId: "user-1",
				timestamp: CORRECTED,
				properties: { path: "/pricing", name: "Pricing", context: CONTEXT },
				usage: { sku: "page_views", unit: "unit", micros: 1_000_000 },
			},
		],
		[
			"/v1/screen",
			{ type: "screen", messageId: "seg-screen-1", userId: "user-1", name: "Home" },
			{
				id: "seg-screen-1",
				event: "$screen",
				userId: "user-1",
				timestamp: CORRECTED,
				properties: { name: "Home", context: CONTEXT },
			},
		],
		[
			"/v1/group",
			{ type: "group", messageId: "seg-group-1", userId: "user-1", groupId: "org-9", traits: { name: "Acme", employees: 40 } },
			{
				id: "seg-group-1",
				event: "$group",
				userId: "user-1",
				customerId: "org-9",
				timestamp: CORRECTED,
				properties: { name: "Acme", employees: 40, groupId: "org-9", context: CONTEXT },
			},
		],
		[
			"/v1/alias",
			{ type: "alias", messageId: "seg-alias-1", userId: "user-7", previousId: "anon-7" },
			{
				id: "seg-alias-1",
				event: "$alias",
				userId: "user-7",
				timestamp: CORRECTED,
				properties: { previousId: "anon-7", context: CONTEXT },
			},
		],
	];

	it.each(cases)("maps POST %s with HTTP Basic to one event", async (path, message, expected) => {
		const tenant = await createTenant();
		const result = await send(post(path, { ...message, context: CONTEXT, timestamp: TIMESTAMP, sentAt: SENT_AT }, segmentAuth(tenant)));
		expect(result.status).toBe(200);
		expect(result.body).toEqual({ success: true });
		expect(result.tenants).toEqual([tenant.id]);
		expect(result.events).toEqual([expected]);
	});

	it.each(cases)("maps POST %s with writeKey in the body to the same event", async (path, message, expected) => {
		const tenant = await createTenant();
		const result = await send(
			post(path, { ...message, writeKey: tenant.writeKey, context: CONTEXT, timestamp: TIMESTAMP, sentAt: SENT_AT }),
		);
		expect(result.status).toBe(200);
		expect(result.body).toEqual({ success: true });
		expect(result.tenants).toEqual([tenant.id]);
		expect(result.events).toEqual([expected]);
	});

	it("maps every type in one /v1/batch, correcting by the batch's sentAt unless a message has its own", async () => {
		const tenant = await createTenant();
		const batch = [
			{
				type: "track",
				messageId: "b-1",
				event: "Signed Up",
				userId: "user-1",
				timestamp: TIMESTAMP,
				properties: { usage: { sku: "seats", quantity: 0.000001 } },
			},
			// Its own sentAt says the client is 1 s behind, not 5 s: 10:00:00 + 1.25 s.
			{
				type: "identify",
				messageId: "b-2",
				userId: "user-1",
				timestamp: TIMESTAMP,
				sentAt: "2026-11-20T10:00:06.000Z",
				traits: { plan: "team" },
			},
			{ type: "page", messageId: "b-3", anonymousId: "anon-3", timestamp: TIMESTAMP, name: "Docs" },
			{ type: "screen", messageId: "b-4", userId: "user-1", timestamp: TIMESTAMP, name: "Settings", properties: { tab: "billing" } },
			{ type: "group", messageId: "b-5", userId: "user-1", timestamp: TIMESTAMP, groupId: "org-1" },
			{
				type: "alias",
				messageId: "b-6",
				userId: "user-1",
				previousId: "anon-3",
				timestamp: TIMESTAMP,
				context: { ip: "198.51.100.1" },
			},
		];
		const result = await send(post("/v1/batch", { batch, sentAt: SENT_AT }, segmentAuth(tenant)));
		expect(result.status).toBe(200);
		expect(result.body).toEqual({ success: true });
		expect(result.tenants).toEqual([tenant.id]);
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: "b-1",
				event: "Signed Up",
				userId: "user-1",
				timestamp: CORRECTED,
				properties: {},
				usage: { sku: "seats", unit: "unit", micros: 1 },
			},
			{
				id: "b-2",
				event: "$identify",
				userId: "user-1",
				timestamp: Date.parse("2026-11-20T10:00:01.250Z"),
				properties: { plan: "team" },
			},
			{ id: "b-3", event: "$page", userId: "anon-3", timestamp: CORRECTED, properties: { name: "Docs" } },
			{ id: "b-4", event: "$screen", userId: "user-1", timestamp: CORRECTED, properties: { tab: "billing", name: "Settings" } },
			{ id: "b-5", event: "$group", userId: "user-1", customerId: "org-1", timestamp: CORRECTED, properties: { groupId: "org-1" } },
			{
				id: "b-6",
				event: "$alias",
				userId: "user-1",
				timestamp: CORRECTED,
				properties: { previousId: "anon-3", context: { ip: "198.51.100.1" } },
			},
		]);
	});

	it("accepts an event from a client whose clock runs an hour ahead, at the corrected time", async () => {
		const tenant = await createTenant();
		// Taken as sent, 11:00 would be more than 5 minutes in the future and refused.
		const message = { messageId: "ahead-1", event: "a", timestamp: "2026-11-20T11:00:00.000Z", sentAt: "2026-11-20T11:00:05.000Z" };
		const result = await send(post("/v1/track", message, segmentAuth(tenant)));
		expect(result.status).toBe(200);
		expect(result.events).toEqual<QueuedEvent[]>([{ id: "ahead-1", event: "a", timestamp: CORRECTED }]);
	});

	it("takes a timestamp as sent when there is no sentAt, and the receive time when there is no timestamp", async () => {
		const tenant = await createTenant();
		const batch = [
			{ type: "track", messageId: "t-1", event: "a", timestamp: "2026-11-20T09:59:00.123Z" },
			{ type: "track", event: "b", userId: "user-2" },
		];
		const result = await send(post("/v1/batch", { batch }, segmentAuth(tenant)));
		expect(result.status).toBe(200);
		expect(result.events).toEqual<QueuedEvent[]>([
			{ id: "t-1", event: "a", timestamp: Date.parse("2026-11-20T09:59:00.123Z") },
			{ id: expect.stringMatching(UUID_V7), event: "b", userId: "user-2", timestamp: RECEIVED },
		]);
	});
});
