// Segment messages billed to a customer: a group call's groupId, else properties.customerId (track,
// page, screen), else context.groupId; numbers become strings, properties stay as sent, and a bad
// customer rejects only its own message.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant } from "../helpers";
import { post, receiveAtFrozenTime, RECEIVED, rejectionsOf, segmentAuth, send } from "./helpers";

describe("the customer of a Segment message", () => {
	receiveAtFrozenTime();

	const cases: [name: string, message: Record<string, unknown>, expected: QueuedEvent][] = [
		[
			"a track's properties.customerId, kept in its properties",
			{ type: "track", messageId: "m-1", event: "API Call", userId: "u-1", properties: { customerId: "acme", plan: "pro" } },
			{
				id: "m-1",
				event: "API Call",
				userId: "u-1",
				customerId: "acme",
				timestamp: RECEIVED,
				properties: { customerId: "acme", plan: "pro" },
			},
		],
		[
			"a numeric properties.customerId, as its string",
			{ type: "track", messageId: "m-2", event: "API Call", properties: { customerId: 42 } },
			{ id: "m-2", event: "API Call", customerId: "42", timestamp: RECEIVED, properties: { customerId: 42 } },
		],
		[
			"properties.customerId over context.groupId",
			{ type: "page", messageId: "m-3", name: "Docs", properties: { customerId: "acme" }, context: { groupId: "org-1" } },
			{
				id: "m-3",
				event: "$page",
				customerId: "acme",
				timestamp: RECEIVED,
				properties: { customerId: "acme", name: "Docs", context: { groupId: "org-1" } },
			},
		],
		[
			"context.groupId when properties name no customer",
			{ type: "screen", messageId: "m-4", name: "Home", properties: { customerId: null }, context: { groupId: "org-1" } },
			{
				id: "m-4",
				event: "$screen",
				customerId: "org-1",
				timestamp: RECEIVED,
				properties: { customerId: null, name: "Home", context: { groupId: "org-1" } },
			},
		],
		[
			"an identify's context.groupId, never its traits' customerId",
			{ type: "identify", messageId: "m-5", userId: "u-1", traits: { customerId: "t-9" }, context: { groupId: 7 } },
			{
				id: "m-5",
				event: "$identify",
				userId: "u-1",
				customerId: "7",
				timestamp: RECEIVED,
				properties: { customerId: "t-9", context: { groupId: 7 } },
			},
		],
		[
			"a group call's own groupId over context.groupId and traits",
			{ type: "group", messageId: "m-6", userId: "u-1", groupId: 99, traits: { customerId: "t-9" }, context: { groupId: "org-1" } },
			{
				id: "m-6",
				event: "$group",
				userId: "u-1",
				customerId: "99",
				timestamp: RECEIVED,
				properties: { customerId: "t-9", groupId: 99, context: { groupId: "org-1" } },
			},
		],
		[
			"an alias's context.groupId",
			{ type: "alias", messageId: "m-7", userId: "u-2", previousId: "anon-2", context: { groupId: "org-2" } },
			{
				id: "m-7",
				event: "$alias",
				userId: "u-2",
				customerId: "org-2",
				timestamp: RECEIVED,
				properties: { previousId: "anon-2", context: { groupId: "org-2" } },
			},
		],
		[
			"none when nothing names one",
			{ type: "track", messageId: "m-8", event: "API Call", properties: { plan: "pro" }, context: { ip: "203.0.113.9" } },
			{ id: "m-8", event: "API Call", timestamp: RECEIVED, properties: { plan: "pro", context: { ip: "203.0.113.9" } } },
		],
	];

	it.each(cases)("takes %s", async (_, message, expected) => {
		const tenant = await createTenant();
		const result = await send(post("/v1/batch", { batch: [message] }, segmentAuth(tenant)));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { success: true } });
		expect(result.events).toEqual([expected]);
	});

	it("takes the customer of each message of a batch on its own, with usage", async () => {
		const tenant = await createTenant();
		const batch = [
			{ type: "track", messageId: "b-1", event: "Tokens", properties: { customerId: "acme", usage: { sku: "tokens", quantity: 3 } } },
			{
				type: "track",
				messageId: "b-2",
				event: "Tokens",
				properties: { usage: { sku: "tokens", quantity: 4 } },
				context: { groupId: "globex" },
			},
		];
		const result = await send(post("/v1/batch", { batch }, segmentAuth(tenant)));
		expect(result.status).toBe(200);
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: "b-1",
				event: "Tokens",
				customerId: "acme",
				timestamp: RECEIVED,
				properties: { customerId: "acme" },
				usage: { sku: "tokens", unit: "unit", micros: 3_000_000 },
			},
			{
				id: "b-2",
				event: "Tokens",
				customerId: "globex",
				timestamp: RECEIVED,
				properties: { context: { groupId: "globex" } },
				usage: { sku: "tokens", unit: "unit", micros: 4_000_000 },
			},
		]);
	});

	it("rejects only the message whose customer is invalid, and keeps it with its place", async () => {
		const tenant = await createTenant();
		const batch = [
			{ type: "track", messageId: "p-1", event: "a", properties: { customerId: "acme" } },
			{ type: "track", messageId: "p-2", event: "a", properties: { customerId: "c".repeat(300) } },
			{ type: "identify", messageId: "p-3", userId: "u", context: { groupId: { id: "org-1" } } },
		];
		const result = await send(post("/v1/batch", { batch }, segmentAuth(tenant)));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { success: true } });
		expect(result.events).toEqual<QueuedEvent[]>([
			{ id: "p-1", event: "a", customerId: "acme", timestamp: RECEIVED, properties: { customerId: "acme" } },
		]);
		const kept = await rejectionsOf(tenant);
		expect(kept.map(({ place, eventId, issues }) => ({ place, eventId, issues }))).toEqual([
			{ place: "batch[2]", eventId: "p-3", issues: [{ path: "batch[2].customerId", message: "must be a string" }] },
			{ place: "batch[1]", eventId: "p-2", issues: [{ path: "batch[1].customerId", message: "must be 1-256 characters" }] },
		]);
	});
});
