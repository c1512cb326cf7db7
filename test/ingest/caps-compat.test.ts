// Caps on a tenant's distinct event names and (sku, unit) pairs on the Segment and PostHog APIs:
// only the messages past a cap are rejected, each kept with its place and issue.
import { describe, expect, it } from "vitest";
import { freezeClock } from "../faults/helpers";
import { ingest, useFrozenClock } from "../helpers";
import { iso, metricsOf, metricsWith } from "../read/helpers";
import { basicAuth, CAP, capError, namedEvents, NEW_NAME, NEW_PAIR, post, rejectionsOf, tenantThatUsed, untilConsumed } from "./helpers";

// Frozen in 2100: no aggregator alarm flushes by itself, so the metrics stay exact.
useFrozenClock(freezeClock);

describe("the Segment and PostHog APIs past the caps", () => {
	it("Segment /v1/batch rejects only the messages with a new event name, lists them with their place and issue, and accepts the rest", async () => {
		const tenant = await tenantThatUsed(namedEvents(CAP));
		const fresh = { type: "track", messageId: "seg-new", event: "Brand New", userId: "u1" };
		const batch = [
			{ type: "track", messageId: "seg-1", event: "name-1", userId: "u1" },
			fresh,
			{ type: "track", messageId: "seg-3", event: "name-2", userId: "u2" },
		];
		const receivedAt = iso(Date.now());

		const { response, queue } = await ingest(post("/v1/batch", { batch }, { authorization: basicAuth(tenant.writeKey) }));

		expect({ status: response.status, body: await response.json() }).toEqual({ status: 200, body: { success: true } });
		expect(queue.messages.flatMap((message) => message.events).map((event) => [event.id, event.event])).toEqual([
			["seg-1", "name-1"],
			["seg-3", "name-2"],
		]);
		expect(await rejectionsOf(tenant)).toEqual([
			{
				receivedAt,
				source: "segment",
				eventId: "seg-new",
				place: "batch[1]",
				issues: [{ path: "batch[1].event", message: NEW_NAME }],
				body: fresh,
			},
		]);
		await untilConsumed(tenant, CAP + 2);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: CAP + 2,
				enqueued: CAP + 2,
				consumed: CAP + 2,
				aggregated: CAP + 2,
				rejected: 1,
				capped: 1,
				oldestUnflushedAgeMs: expect.any(Number),
			}),
		);
	});

	it("Segment answers 400 naming each message's place when every message is past the cap", async () => {
		const tenant = await tenantThatUsed(namedEvents(CAP));

		const { response, queue } = await ingest(
			post(
				"/v1/batch",
				{ batch: [{ type: "track", messageId: "only", event: "Brand New", userId: "u1" }] },
				{ authorization: basicAuth(tenant.writeKey) },
			),
		);

		expect({ status: response.status, body: await response.json() }).toEqual({
			status: 400,
			body: capError([{ index: 0, path: "batch[0].event", message: NEW_NAME }]),
		});
		expect(queue.calls).toEqual([]);
		expect((await rejectionsOf(tenant)).map((item) => [item.eventId, item.place])).toEqual([["only", "batch[0]"]]);
		expect((await metricsOf(tenant)).capped).toBe(1);
	});

	it("PostHog /batch/ rejects only the messages with a new event name or (sku, unit) pair, and accepts the rest", async () => {
		const tenant = await tenantThatUsed(namedEvents(CAP).map((event, i) => ({ ...event, usage: { sku: `sku-${i}`, quantity: 1 } })));
		const newName = { event: "$pageview", distinct_id: "u1", uuid: "ph-2" };
		const newPair = {
			event: "name-3",
			distinct_id: "u1",
			uuid: "ph-3",
			properties: { usage: { sku: "sku-3", quantity: 1, unit: "gb" } },
		};
		const batch = [
			{ event: "name-1", distinct_id: "u1", uuid: "ph-1", properties: { usage: { sku: "sku-1", quantity: 5 } } },
			newName,
			newPair,
			{ event: "name-4", distinct_id: "u2", uuid: "ph-4" },
		];
		const at = { receivedAt: iso(Date.now()), source: "posthog" };

		const { response, queue } = await ingest(post("/batch/", { api_key: tenant.writeKey, batch }));

		expect({ status: response.status, body: await response.json() }).toEqual({ status: 200, body: { status: 1 } });
		expect(queue.messages.flatMap((message) => message.events).map((event) => event.id)).toEqual(["ph-1", "ph-4"]);
		expect(await rejectionsOf(tenant)).toEqual([
			{ ...at, eventId: "ph-3", place: "batch[2]", issues: [{ path: "batch[2].usage.sku", message: NEW_PAIR }], body: newPair },
			{ ...at, eventId: "ph-2", place: "batch[1]", issues: [{ path: "batch[1].event", message: NEW_NAME }], body: newName },
		]);
		await untilConsumed(tenant, CAP + 2);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: CAP + 2,
				enqueued: CAP + 2,
				consumed: CAP + 2,
				aggregated: CAP + 2,
				rejected: 2,
				capped: 2,
				oldestUnflushedAgeMs: expect.any(Number),
			}),
		);
	});
});
