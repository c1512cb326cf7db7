// Segment's /v1/batch accepted in part: the valid messages are enqueued, and each invalid one is
// rejected alone and kept with its place and issues.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant, jsonBytes } from "../helpers";
import { post, receiveAtFrozenTime, RECEIVED, rejectionsOf, SEGMENT_TYPES, segmentAuth, send } from "./helpers";

describe("partial acceptance", () => {
	receiveAtFrozenTime();

	const big = { type: "track", messageId: "p-big", event: "big", properties: { pad: "x".repeat(33_000) } };
	const cases: [
		name: string,
		batch: unknown[],
		accepted: QueuedEvent[],
		rejected: { place: string; eventId: string | null; issues: { path: string; message: string }[] }[],
	][] = [
		[
			"an entry that is not an object",
			[{ type: "track", messageId: "p-1", event: "a" }, "b"],
			[{ id: "p-1", event: "a", timestamp: RECEIVED }],
			[{ place: "batch[1]", eventId: null, issues: [{ path: "batch[1]", message: "must be an object" }] }],
		],
		[
			"an entry of an unknown type",
			[
				{ type: "purchase", messageId: "p-2", event: "b" },
				{ type: "track", messageId: "p-1", event: "a" },
			],
			[{ id: "p-1", event: "a", timestamp: RECEIVED }],
			[{ place: "batch[0]", eventId: "p-2", issues: [{ path: "batch[0].type", message: `must be one of ${SEGMENT_TYPES}` }] }],
		],
		[
			"an entry over 32 KB",
			[{ type: "track", messageId: "p-1", event: "small" }, big],
			[{ id: "p-1", event: "small", timestamp: RECEIVED }],
			[
				{
					place: "batch[1]",
					eventId: "p-big",
					issues: [{ path: "batch[1]", message: `is ${jsonBytes(big)} bytes, over Segment's 32 KB limit` }],
				},
			],
		],
		[
			"a track without an event and a bad usage quantity",
			[
				{ type: "track", messageId: "p-1", event: "a" },
				{ type: "identify", messageId: "p-2", userId: "u" },
				{ type: "track", messageId: "p-3", userId: "u" },
				{ type: "track", messageId: "p-4", event: "a", properties: { usage: { sku: "tokens", quantity: "two" } } },
			],
			[
				{ id: "p-1", event: "a", timestamp: RECEIVED },
				{ id: "p-2", event: "$identify", userId: "u", timestamp: RECEIVED },
			],
			[
				{
					place: "batch[3]",
					eventId: "p-4",
					issues: [
						{
							path: "batch[3].usage.quantity",
							message: "must be a number, or a decimal string with at most 6 fraction digits",
						},
					],
				},
				{ place: "batch[2]", eventId: "p-3", issues: [{ path: "batch[2].event", message: "must be a string" }] },
			],
		],
	];

	it.each(cases)("accepts the rest of a batch with %s, and keeps the rejected entries", async (_, batch, accepted, rejected) => {
		const tenant = await createTenant();
		const result = await send(post("/v1/batch", { batch }, segmentAuth(tenant)));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { success: true } });
		expect(result.events).toEqual(accepted);
		const kept = await rejectionsOf(tenant);
		expect(kept.map(({ place, eventId, issues }) => ({ place, eventId, issues }))).toEqual(rejected);
		expect(kept.map(({ receivedAt, source }) => ({ receivedAt, source }))).toEqual(
			rejected.map(() => ({ receivedAt: new Date(RECEIVED).toISOString(), source: "segment" })),
		);
	});
});
