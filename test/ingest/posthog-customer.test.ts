// PostHog events billed to a customer: properties.customerId, else the $groups entry named
// customer, company, organization or account (in that order), else the only group; numbers become
// strings, properties stay as sent, and a bad customer rejects only its own event.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant } from "../helpers";
import { POSTHOG_OK, posthogBatch, receiveAtFrozenTime, RECEIVED, rejectionsOf, send } from "./helpers";

describe("the customer of a PostHog event", () => {
	receiveAtFrozenTime();

	const cases: [name: string, properties: Record<string, unknown>, customerId: string | undefined][] = [
		["properties.customerId, over $groups", { customerId: "acme", $groups: { company: "globex" } }, "acme"],
		["a numeric properties.customerId, as its string", { customerId: 42 }, "42"],
		[
			"$groups.customer before company, organization and account",
			{ $groups: { account: "a", organization: "o", company: "c", customer: "cu" } },
			"cu",
		],
		["$groups.company before organization and account", { $groups: { account: "a", organization: "o", company: "c" } }, "c"],
		["$groups.organization before account", { $groups: { account: "a", project: "p", organization: "o" } }, "o"],
		["$groups.account before other group types", { $groups: { project: "p", account: "a" } }, "a"],
		["a numeric group key, as its string", { $groups: { company: 7 } }, "7"],
		["the only group, whatever its type", { $groups: { project: "p-1" } }, "p-1"],
		["$groups when properties.customerId is null", { customerId: null, $groups: { team: "t-1" } }, "t-1"],
		["none from two groups of other types", { $groups: { project: "p", team: "t" } }, undefined],
		["none from empty $groups", { $groups: {} }, undefined],
		["none from $groups that is not an object", { $groups: ["acme"] }, undefined],
		["none when nothing names one", { plan: "pro" }, undefined],
	];

	it.each(cases)("takes %s", async (_, properties, customerId) => {
		const tenant = await createTenant();
		const result = await send(posthogBatch(tenant, [{ event: "hit", distinct_id: "u-1", uuid: "h-1", properties }]));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		const expected: QueuedEvent = { id: "h-1", event: "hit", userId: "u-1", timestamp: RECEIVED, properties };
		if (customerId !== undefined) expected.customerId = customerId;
		expect(result.events).toEqual([expected]);
	});

	it("takes the customer of each event of a batch on its own, with usage", async () => {
		const tenant = await createTenant();
		const batch = [
			{ event: "tokens", distinct_id: "u-1", uuid: "b-1", properties: { customerId: "acme", usage: { sku: "tokens", quantity: 3 } } },
			{
				event: "tokens",
				distinct_id: "u-2",
				uuid: "b-2",
				properties: { $groups: { company: "globex" }, usage: { sku: "tokens", quantity: 4 } },
			},
			{ event: "tokens", distinct_id: "u-3", uuid: "b-3", properties: { usage: { sku: "tokens", quantity: 5 } } },
		];
		const result = await send(posthogBatch(tenant, batch));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		const usage = (quantity: number) => ({ sku: "tokens", unit: "unit", micros: quantity * 1_000_000 });
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: "b-1",
				event: "tokens",
				userId: "u-1",
				customerId: "acme",
				timestamp: RECEIVED,
				properties: { customerId: "acme" },
				usage: usage(3),
			},
			{
				id: "b-2",
				event: "tokens",
				userId: "u-2",
				customerId: "globex",
				timestamp: RECEIVED,
				properties: { $groups: { company: "globex" } },
				usage: usage(4),
			},
			{ id: "b-3", event: "tokens", userId: "u-3", timestamp: RECEIVED, properties: {}, usage: usage(5) },
		]);
	});

	it("rejects only the event whose customer is invalid, and keeps it with its place", async () => {
		const tenant = await createTenant();
		const batch = [
			{ event: "hit", distinct_id: "u-1", uuid: "p-1", properties: { $groups: { company: "acme" } } },
			{ event: "hit", distinct_id: "u-1", uuid: "p-2", properties: { customerId: "c".repeat(300) } },
			{ event: "hit", distinct_id: "u-1", uuid: "p-3", properties: { $groups: { company: "" } } },
		];
		const result = await send(posthogBatch(tenant, batch));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: "p-1",
				event: "hit",
				userId: "u-1",
				customerId: "acme",
				timestamp: RECEIVED,
				properties: { $groups: { company: "acme" } },
			},
		]);
		const kept = await rejectionsOf(tenant);
		expect(kept.map(({ place, eventId, issues }) => ({ place, eventId, issues }))).toEqual([
			{ place: "batch[2]", eventId: "p-3", issues: [{ path: "batch[2].customerId", message: "must be 1-256 characters" }] },
			{ place: "batch[1]", eventId: "p-2", issues: [{ path: "batch[1].customerId", message: "must be 1-256 characters" }] },
		]);
	});
});
