// PostHog's capture API, mapped: every body shape posthog-node and posthog-js send becomes exactly
// these Meterline events, gzip included; a batch is accepted in part, each invalid event rejected
// alone and kept with its place and issues.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant, type TestTenant } from "../helpers";
import {
	CORRECTED,
	gzip,
	nodeEvent,
	post,
	POSTHOG_OK,
	receiveAtFrozenTime,
	RECEIVED,
	rejectionsOf,
	send,
	SENT_AT,
	TIMESTAMP,
	UUID_1,
	UUID_2,
} from "./helpers";

describe("mapping", () => {
	receiveAtFrozenTime();

	it("maps a posthog-node /batch/ body, correcting each timestamp by sent_at", async () => {
		const tenant = await createTenant();
		const batch = [
			nodeEvent({ properties: { $lib: "posthog-node", plan: "pro", usage: { sku: "tokens", quantity: 1.25 } } }),
			nodeEvent({
				event: "$identify",
				distinct_id: "user-2",
				uuid: UUID_2,
				timestamp: "2026-11-20T09:59:59.500Z",
				properties: { $set: { plan: "team" } },
			}),
			nodeEvent({
				event: "$pageview",
				uuid: "p-3",
				distinct_id: "user-3",
				properties: { $current_url: "https://example.com/", usage: { sku: "views", quantity: 1, unit: "view" } },
			}),
		];
		const result = await send(post("/batch/", { api_key: tenant.writeKey, batch, sent_at: SENT_AT }));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.tenants).toEqual([tenant.id]);
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: UUID_1,
				event: "signed_up",
				userId: "user-1",
				timestamp: CORRECTED,
				properties: { $lib: "posthog-node", plan: "pro" },
				usage: { sku: "tokens", unit: "unit", micros: 1_250_000 },
			},
			{
				id: UUID_2,
				event: "$identify",
				userId: "user-2",
				timestamp: Date.parse("2026-11-20T10:00:01.750Z"),
				properties: { $set: { plan: "team" } },
			},
			{
				id: "p-3",
				event: "$pageview",
				userId: "user-3",
				timestamp: CORRECTED,
				properties: { $current_url: "https://example.com/" },
				usage: { sku: "views", unit: "view", micros: 1_000_000 },
			},
		]);
	});

	it("accepts events from a client whose clock runs an hour ahead, at the corrected time", async () => {
		const tenant = await createTenant();
		// Taken as sent, 11:00 would be more than 5 minutes in the future and refused.
		const body = {
			api_key: tenant.writeKey,
			batch: [nodeEvent({ timestamp: "2026-11-20T11:00:00.000Z", properties: {} })],
			sent_at: "2026-11-20T11:00:05.000Z",
		};
		const result = await send(post("/batch/", body));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.events).toEqual<QueuedEvent[]>([
			{ id: UUID_1, event: "signed_up", userId: "user-1", timestamp: CORRECTED, properties: {} },
		]);
	});

	it("maps a single /capture/ event and drops the key from its properties", async () => {
		const tenant = await createTenant();
		const body = {
			api_key: tenant.writeKey,
			event: "$pageview",
			distinct_id: "user-9",
			uuid: UUID_1,
			timestamp: TIMESTAMP,
			sent_at: SENT_AT,
			properties: {
				token: tenant.writeKey,
				api_key: tenant.writeKey,
				$current_url: "https://example.com/a",
				nested: { token: "kept-but-redacted" },
			},
		};
		const result = await send(post("/capture/", body));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.tenants).toEqual([tenant.id]);
		// The key is removed, not redacted; a nested "token" is ordinary data and goes through redaction.
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: UUID_1,
				event: "$pageview",
				userId: "user-9",
				timestamp: CORRECTED,
				properties: { $current_url: "https://example.com/a", nested: { token: "[redacted]" } },
			},
		]);
	});

	it("maps a posthog-js array to /e/, keyed by the first event's properties.token", async () => {
		const tenant = await createTenant();
		const events = [
			{
				event: "$pageview",
				uuid: UUID_1,
				timestamp: TIMESTAMP,
				properties: { token: tenant.writeKey, distinct_id: "anon-1", $current_url: "https://example.com/" },
			},
			{ event: "$autocapture", uuid: UUID_2, properties: { token: tenant.writeKey, distinct_id: "anon-1", $event_type: "click" } },
		];
		const result = await send(post("/e/", events, { "content-type": "text/plain" }));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.tenants).toEqual([tenant.id]);
		// No sent_at: the timestamp is taken as sent, and a missing one is the receive time.
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: UUID_1,
				event: "$pageview",
				userId: "anon-1",
				timestamp: Date.parse(TIMESTAMP),
				properties: { distinct_id: "anon-1", $current_url: "https://example.com/" },
			},
			{
				id: UUID_2,
				event: "$autocapture",
				userId: "anon-1",
				timestamp: RECEIVED,
				properties: { distinct_id: "anon-1", $event_type: "click" },
			},
		]);
	});

	it.each<[string, (tenant: TestTenant) => Record<string, unknown>]>([
		["token in the body", (tenant) => ({ token: tenant.writeKey, event: "hit", distinct_id: "u-1", uuid: UUID_1 })],
		[
			"properties.token, posthog-js style",
			(tenant) => ({ event: "hit", uuid: UUID_1, properties: { token: tenant.writeKey, distinct_id: "u-1" } }),
		],
		["token in a batch body", (tenant) => ({ token: tenant.writeKey, batch: [{ event: "hit", distinct_id: "u-1", uuid: UUID_1 }] })],
	])("takes the write key from %s", async (_, body) => {
		const tenant = await createTenant();
		const result = await send(post("/i/v0/e/", body(tenant)));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.tenants).toEqual([tenant.id]);
		expect(result.events).toHaveLength(1);
		expect(result.events[0]).toMatchObject({ id: UUID_1, event: "hit", userId: "u-1", timestamp: RECEIVED });
	});

	it.each(["/batch", "/batch/", "/capture", "/capture/", "/e", "/e/", "/i/v0/e", "/i/v0/e/"])("accepts POST %s", async (path) => {
		const tenant = await createTenant();
		const result = await send(post(path, { api_key: tenant.writeKey, event: "hit", distinct_id: "u-1", uuid: UUID_1 }));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.tenants).toEqual([tenant.id]);
		expect(result.events).toEqual<QueuedEvent[]>([{ id: UUID_1, event: "hit", userId: "u-1", timestamp: RECEIVED }]);
	});

	it("reads a gzip body sent with Content-Encoding: gzip", async () => {
		const tenant = await createTenant();
		const body = await gzip({
			api_key: tenant.writeKey,
			batch: [nodeEvent(), nodeEvent({ uuid: UUID_2, event: "$identify" })],
			sent_at: SENT_AT,
		});
		const result = await send(post("/batch/", body, { "content-encoding": "gzip" }));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.tenants).toEqual([tenant.id]);
		const properties = { $lib: "posthog-node", $lib_version: "5.0.0", $geoip_disable: true };
		expect(result.events).toEqual<QueuedEvent[]>([
			{ id: UUID_1, event: "signed_up", userId: "user-1", timestamp: CORRECTED, properties },
			{ id: UUID_2, event: "$identify", userId: "user-1", timestamp: CORRECTED, properties },
		]);
	});

	it.each(["/e/", "/i/v0/e/", "/batch/"])("reads a gzip body sent to %s?compression=gzip-js", async (path) => {
		const tenant = await createTenant();
		const body = await gzip([
			{ event: "$pageview", uuid: UUID_1, timestamp: TIMESTAMP, properties: { token: tenant.writeKey, distinct_id: "anon-2" } },
		]);
		const result = await send(post(`${path}?compression=gzip-js&ver=1.200.0&_=1763632805000`, body, { "content-type": "text/plain" }));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.tenants).toEqual([tenant.id]);
		expect(result.events).toEqual<QueuedEvent[]>([
			{ id: UUID_1, event: "$pageview", userId: "anon-2", timestamp: Date.parse(TIMESTAMP), properties: { distinct_id: "anon-2" } },
		]);
	});
});

describe("partial acceptance", () => {
	receiveAtFrozenTime();

	const hit = { id: UUID_1, event: "hit", userId: "u-1", timestamp: RECEIVED };
	const cases: [
		name: string,
		path: string,
		body: (tenant: TestTenant) => object,
		accepted: QueuedEvent[],
		rejected: { place: string; eventId: string | null; issues: { path: string; message: string }[] }[],
	][] = [
		[
			"a batch entry that is not an object",
			"/batch/",
			(t) => ({ api_key: t.writeKey, batch: [{ event: "hit", distinct_id: "u-1", uuid: UUID_1 }, "x"] }),
			[hit],
			[{ place: "batch[1]", eventId: null, issues: [{ path: "batch[1]", message: "must be an object" }] }],
		],
		[
			"a posthog-js array entry that is null",
			"/e/",
			(t) => [{ event: "hit", uuid: UUID_1, properties: { token: t.writeKey, distinct_id: "u-1" } }, null],
			[{ ...hit, properties: { distinct_id: "u-1" } }],
			[{ place: "batch[1]", eventId: null, issues: [{ path: "batch[1]", message: "must be an object" }] }],
		],
		[
			"entries without an event and with a bad usage",
			"/batch/",
			(t) => ({
				api_key: t.writeKey,
				batch: [
					{ distinct_id: "u-1", uuid: UUID_2 },
					{ event: "hit", distinct_id: "u-1", uuid: UUID_1 },
					{ event: "hit", distinct_id: "u-1", uuid: "u-3", properties: { usage: { quantity: 1 } } },
				],
			}),
			[hit],
			[
				{ place: "batch[2]", eventId: "u-3", issues: [{ path: "batch[2].usage.sku", message: "must be a string" }] },
				{ place: "batch[0]", eventId: UUID_2, issues: [{ path: "batch[0].event", message: "must be a string" }] },
			],
		],
	];

	it.each(cases)("accepts the rest of a batch with %s, and keeps the rejected entries", async (_, path, body, accepted, rejected) => {
		const tenant = await createTenant();
		const result = await send(post(path, body(tenant), { "content-type": "text/plain" }));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.events).toEqual(accepted);
		const kept = await rejectionsOf(tenant);
		expect(kept.map(({ place, eventId, issues }) => ({ place, eventId, issues }))).toEqual(rejected);
		expect(kept.map(({ receivedAt, source }) => ({ receivedAt, source }))).toEqual(
			rejected.map(() => ({ receivedAt: new Date(RECEIVED).toISOString(), source: "posthog" })),
		);
	});
});
