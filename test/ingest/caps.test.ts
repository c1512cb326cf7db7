// Caps on a tenant's distinct event names and (sku, unit) pairs: a whole 400 at POST /v1/events, per message on the Segment and PostHog APIs, and `refused` at the aggregator.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { d1Rows } from "../aggregator/fixtures";
import { basicAuth, post, rejectionsOf } from "../compat/helpers";
import { flushVia, freezeClock, iso, metricsOf, metricsWith } from "../faults/fixtures";
import { createTenant, type TestTenant } from "../helpers/api";
import { useFrozenClock } from "../helpers/clock";
import { RecordingQueue } from "../helpers/queues";
import { eventsRequest, ingest } from "./helpers";

// Frozen in 2100: no aggregator alarm flushes by itself, so the metrics stay exact.
const clock = useFrozenClock(freezeClock);

const CAP = 1000;
const NEW_NAME = `is a new event name, and the tenant already has ${CAP} (the cap)`;
const NEW_PAIR = `is a new (sku, unit) pair, and the tenant already has ${CAP} (the cap)`;
const CAPPED = `capped: a new event name or SKU would pass the tenant's cap (${CAP} event names, ${CAP} SKUs)`;

const names = (count: number) => Array.from({ length: count }, (_, i) => ({ event: `name-${i}` }));
const pairs = (count: number) => Array.from({ length: count }, (_, i) => ({ event: "use", usage: { sku: `sku-${i}`, quantity: 1 } }));

/** POST /v1/events through the Worker with a recording queue in front of the real one. */
async function postEvents(tenant: TestTenant, events: unknown[]): Promise<{ status: number; body: unknown; sent: QueuedEvent[] }> {
	const { response, queue } = await ingest(eventsRequest(JSON.stringify({ events }), tenant.writeKey));
	expect(queue.failed).toBe(0);
	return { status: response.status, body: await response.json(), sent: queue.messages.flatMap((message) => message.events) };
}

/** Waits until the tenant's aggregator has consumed `count` events in all. */
async function consumed(tenant: TestTenant, count: number): Promise<void> {
	await vi.waitFor(async () => expect((await metricsOf(tenant)).consumed).toBe(count), { timeout: 20_000, interval: 50 });
}

/** A tenant that has used `events` (every name or pair in them registered), all consumed. */
async function tenantThatUsed(events: unknown[]): Promise<TestTenant> {
	const tenant = await createTenant();
	const result = await postEvents(tenant, events);
	expect({ status: result.status, sent: result.sent.length }).toEqual({ status: 202, sent: events.length });
	await consumed(tenant, events.length);
	return tenant;
}

function capError(details: { index: number; path: string; message: string }[]) {
	const bad = new Set(details.map((detail) => detail.index)).size;
	return { error: { code: "invalid_request", message: `${bad} invalid event${bad === 1 ? "" : "s"}; nothing was accepted`, details } };
}

describe("POST /v1/events past the caps", () => {
	it("lets a tenant use 1000 event names, refuses a request adding a 1001st whole, and keeps the known names working", async () => {
		const tenant = await tenantThatUsed(names(CAP));

		const refused = await postEvents(tenant, [
			{ event: "name-0" },
			{ event: "brand-new" },
			{ event: "name-999" },
			{ event: "brand-new" },
			{ event: "also-new" },
		]);

		expect(refused).toEqual({
			status: 400,
			body: capError([
				{ index: 1, path: "event", message: NEW_NAME },
				{ index: 3, path: "event", message: NEW_NAME },
				{ index: 4, path: "event", message: NEW_NAME },
			]),
			sent: [],
		});

		const known = await postEvents(tenant, [{ event: "name-0" }, { event: "name-999" }]);
		expect({ status: known.status, sent: known.sent.map((event) => event.event) }).toEqual({
			status: 202,
			sent: ["name-0", "name-999"],
		});
		await consumed(tenant, CAP + 2);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: CAP + 2,
				enqueued: CAP + 2,
				consumed: CAP + 2,
				aggregated: CAP + 2,
				capped: 3,
				oldestUnflushedAgeMs: expect.any(Number),
			}),
		);
	});

	it("lets a tenant use 1000 (sku, unit) pairs, refuses a request adding a 1001st whole, and keeps the known pairs working", async () => {
		const tenant = await tenantThatUsed(pairs(CAP));

		const refused = await postEvents(tenant, [
			{ event: "use", usage: { sku: "sku-0", quantity: 2 } },
			// A known sku with a new unit is a new pair.
			{ event: "use", usage: { sku: "sku-0", quantity: 2, unit: "gb" } },
			{ event: "use", usage: { sku: "fresh", quantity: 1 } },
			{ event: "use" },
		]);

		expect(refused).toEqual({
			status: 400,
			body: capError([
				{ index: 1, path: "usage.sku", message: NEW_PAIR },
				{ index: 2, path: "usage.sku", message: NEW_PAIR },
			]),
			sent: [],
		});

		const known = await postEvents(tenant, [
			{ event: "use", usage: { sku: "sku-0", quantity: 2 } },
			{ event: "use", usage: { sku: "sku-999", quantity: 3, unit: "unit" } },
		]);
		expect({ status: known.status, sent: known.sent.map((event) => event.usage) }).toEqual({
			status: 202,
			sent: [
				{ sku: "sku-0", unit: "unit", micros: 2_000_000 },
				{ sku: "sku-999", unit: "unit", micros: 3_000_000 },
			],
		});
		await consumed(tenant, CAP + 2);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: CAP + 2,
				enqueued: CAP + 2,
				consumed: CAP + 2,
				aggregated: CAP + 2,
				capped: 2,
				oldestUnflushedAgeMs: expect.any(Number),
			}),
		);
	});
});

describe("a request refused whole", () => {
	// The producer registers a request's new names only if they all fit: otherwise "first-new"
	// would take the last slot although none of its events was accepted.
	it("registers none of a refused request's new names", async () => {
		const tenant = await tenantThatUsed(names(CAP - 1));

		const refused = await postEvents(tenant, [{ event: "first-new" }, { event: "second-new" }]);
		expect({ status: refused.status, sent: refused.sent }).toEqual({ status: 400, sent: [] });

		const other = await postEvents(tenant, [{ event: "third-new" }]);
		expect({ status: other.status, sent: other.sent.map((event) => event.event) }).toEqual({ status: 202, sent: ["third-new"] });
	});
});

describe("the capped counter", () => {
	// Reported with the 400 (METRICS_REPORT_MS is 0 here), not left in the isolate's memory.
	it("counts the refused events in capped as soon as the 400 is answered", async () => {
		const tenant = await tenantThatUsed(names(CAP));

		const refused = await postEvents(tenant, [{ event: "brand-new" }, { event: "name-1" }, { event: "also-new" }]);
		expect(refused.status).toBe(400);

		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: CAP,
				enqueued: CAP,
				consumed: CAP,
				aggregated: CAP,
				capped: 2,
				oldestUnflushedAgeMs: expect.any(Number),
			}),
		);
	});
});

describe("the Segment and PostHog APIs past the caps", () => {
	it("Segment /v1/batch rejects only the messages with a new event name, lists them with their place and issue, and accepts the rest", async () => {
		const tenant = await tenantThatUsed(names(CAP));
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
		await consumed(tenant, CAP + 2);
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
		const tenant = await tenantThatUsed(names(CAP));

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
		const tenant = await tenantThatUsed(names(CAP).map((event, i) => ({ ...event, usage: { sku: `sku-${i}`, quantity: 1 } })));
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
		await consumed(tenant, CAP + 2);
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

describe("events that bypass the edge", () => {
	let next = 0;
	const event = (name: string, usage?: { sku: string; unit: string }): QueuedEvent => ({
		id: `bypass-${next++}`,
		event: name,
		timestamp: clock.start - 60_000,
		...(usage && { usage: { ...usage, micros: 1_000_000 } }),
	});

	it("refuses a new name or (sku, unit) pair past the cap as capped, and counts neither", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const full = Array.from({ length: CAP }, (_, i) => event(`n-${i}`, { sku: `s-${i}`, unit: "unit" }));
		expect(await stub.ingest(tenant.id, full)).toEqual({ accepted: CAP, duplicates: 0, refused: [] });

		const known = event("n-0", { sku: "s-0", unit: "unit" });
		const newName = event("fresh");
		const newPair = event("n-1", { sku: "s-1", unit: "gb" });
		expect(await stub.ingest(tenant.id, [known, newName, newPair])).toEqual({
			accepted: 1,
			duplicates: 0,
			refused: [
				{ id: newName.id, reason: CAPPED },
				{ id: newPair.id, reason: CAPPED },
			],
		});
		// Refused ids are not remembered: sent again, they are refused again, not dropped as duplicates.
		expect(await stub.ingest(tenant.id, [newName])).toEqual({
			accepted: 0,
			duplicates: 0,
			refused: [{ id: newName.id, reason: CAPPED }],
		});

		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: CAP + 4, aggregated: CAP + 1, capped: 3, oldestUnflushedAgeMs: expect.any(Number) }),
		);
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 2 * CAP });
		expect(
			await d1Rows(
				"SELECT event, count FROM event_rollups WHERE tenant = ?1 AND event IN ('n-0', 'n-1', 'fresh') ORDER BY event",
				tenant.id,
			),
		).toEqual([
			{ event: "n-0", count: 2 },
			{ event: "n-1", count: 1 },
		]);
		expect(
			await d1Rows(
				"SELECT sku, unit, events FROM usage_rollups WHERE tenant = ?1 AND sku IN ('s-0', 's-1') ORDER BY sku, unit",
				tenant.id,
			),
		).toEqual([
			{ sku: "s-0", unit: "unit", events: 2 },
			{ sku: "s-1", unit: "unit", events: 1 },
		]);
	});
});
