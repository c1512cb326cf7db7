// PostHog's capture API: every body shape posthog-node and posthog-js send becomes exactly these
// Meterline events, gzip included; a batch is accepted in part (each invalid event rejected alone),
// and every request with no valid event is refused exactly, enqueueing nothing.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant, type TestTenant } from "../helpers/api";
import { jsonBytes } from "../producer/helpers";
import {
	apiError,
	CORRECTED,
	expectPostOnly,
	expectRateLimited,
	expectRefused,
	gzip,
	post,
	receiveAtFrozenTime,
	RECEIVED,
	rejectionsOf,
	send,
	SENT_AT,
	TIMESTAMP,
} from "./helpers";

const UUID_1 = "0192e4a0-0000-7000-8000-000000000001";
const UUID_2 = "0192e4a0-0000-7000-8000-000000000002";
const MiB = 1_048_576;

const OK = { status: 200, body: { status: 1 } };

/** One posthog-node batch entry, as its queue sends it. */
function nodeEvent(overrides: Record<string, unknown> = {}) {
	return {
		event: "signed_up",
		distinct_id: "user-1",
		properties: { $lib: "posthog-node", $lib_version: "5.0.0", $geoip_disable: true },
		timestamp: TIMESTAMP,
		uuid: UUID_1,
		type: "capture",
		library: "posthog-node",
		library_version: "5.0.0",
		...overrides,
	};
}

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
		expect({ status: result.status, body: result.body }).toEqual(OK);
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
		expect({ status: result.status, body: result.body }).toEqual(OK);
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
		expect({ status: result.status, body: result.body }).toEqual(OK);
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
		expect({ status: result.status, body: result.body }).toEqual(OK);
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
		expect({ status: result.status, body: result.body }).toEqual(OK);
		expect(result.tenants).toEqual([tenant.id]);
		expect(result.events).toHaveLength(1);
		expect(result.events[0]).toMatchObject({ id: UUID_1, event: "hit", userId: "u-1", timestamp: RECEIVED });
	});

	it.each(["/batch", "/batch/", "/capture", "/capture/", "/e", "/e/", "/i/v0/e", "/i/v0/e/"])("accepts POST %s", async (path) => {
		const tenant = await createTenant();
		const result = await send(post(path, { api_key: tenant.writeKey, event: "hit", distinct_id: "u-1", uuid: UUID_1 }));
		expect({ status: result.status, body: result.body }).toEqual(OK);
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
		expect({ status: result.status, body: result.body }).toEqual(OK);
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
		expect({ status: result.status, body: result.body }).toEqual(OK);
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
		expect({ status: result.status, body: result.body }).toEqual(OK);
		expect(result.events).toEqual(accepted);
		const kept = await rejectionsOf(tenant);
		expect(kept.map(({ place, eventId, issues }) => ({ place, eventId, issues }))).toEqual(rejected);
		expect(kept.map(({ receivedAt, source }) => ({ receivedAt, source }))).toEqual(
			rejected.map(() => ({ receivedAt: new Date(RECEIVED).toISOString(), source: "posthog" })),
		);
	});
});

describe("validation", () => {
	const notJson = apiError("invalid_request", "Request body is not valid JSON", [{ path: "body", message: "invalid JSON" }]);
	const notGzip = apiError("invalid_request", "Request body is not valid gzip", [{ path: "body", message: "invalid gzip" }]);
	const notObject = apiError("invalid_request", "body: must be a JSON object or array", [
		{ path: "body", message: "must be a JSON object or array" },
	]);
	const tooLarge = apiError("payload_too_large", `Request body exceeds ${MiB} bytes`, [
		{ path: "body", message: `larger than ${MiB} bytes` },
	]);

	it.each<[string, string, BodyInit | ((tenant: TestTenant) => Promise<BodyInit> | BodyInit), Record<string, string>, number, unknown]>([
		["invalid JSON", "/batch/", '{"api_key":', {}, 400, notJson],
		[
			"an empty body",
			"/capture/",
			"",
			{},
			400,
			apiError("invalid_request", "Request body is empty", [{ path: "body", message: "empty" }]),
		],
		["a JSON number", "/e/", "42", {}, 400, notObject],
		["a JSON string", "/i/v0/e/", '"event"', {}, 400, notObject],
		["JSON null", "/batch/", "null", {}, 400, notObject],
		["JSON true", "/capture", "true", {}, 400, notObject],
		["text under Content-Encoding: gzip", "/batch/", '{"api_key":"x","batch":[]}', { "content-encoding": "gzip" }, 400, notGzip],
		["text under ?compression=gzip-js", "/e/?compression=gzip-js", '[{"event":"a"}]', {}, 400, notGzip],
		[
			"truncated gzip",
			"/batch/",
			async (t) => (await gzip({ api_key: t.writeKey, batch: [nodeEvent()] })).slice(0, 20),
			{ "content-encoding": "gzip" },
			400,
			notGzip,
		],
		["gzip of invalid JSON", "/e/?compression=gzip-js", () => gzip("[{"), {}, 400, notJson],
		[
			"an empty batch",
			"/batch/",
			(t) => JSON.stringify({ api_key: t.writeKey, batch: [] }),
			{},
			400,
			apiError("invalid_request", "batch: must not be empty", [{ path: "batch", message: "must not be empty" }]),
		],
		[
			"a batch whose only entry is not an object",
			"/batch/",
			(t) => JSON.stringify({ api_key: t.writeKey, batch: ["x"] }),
			{},
			400,
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0]", message: "must be an object" },
			]),
		],
		[
			"an array of an event without a name and null",
			"/e/",
			(t) => JSON.stringify([{ properties: { token: t.writeKey } }, null]),
			{},
			400,
			apiError("invalid_request", "2 invalid events; nothing was accepted", [
				{ index: 0, path: "batch[0].event", message: "must be a string" },
				{ index: 1, path: "batch[1]", message: "must be an object" },
			]),
		],
		[
			"a batch whose entries lack an event",
			"/batch/",
			(t) =>
				JSON.stringify({
					api_key: t.writeKey,
					batch: [nodeEvent({ event: undefined }), nodeEvent({ event: undefined, uuid: UUID_2 })],
				}),
			{},
			400,
			apiError("invalid_request", "2 invalid events; nothing was accepted", [
				{ index: 0, path: "batch[0].event", message: "must be a string" },
				{ index: 1, path: "batch[1].event", message: "must be a string" },
			]),
		],
		[
			"a single event whose name is a number",
			"/capture/",
			(t) => JSON.stringify({ api_key: t.writeKey, event: 7, distinct_id: "u" }),
			{},
			400,
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].event", message: "must be a string" },
			]),
		],
		[
			"a distinct_id that is an object",
			"/capture/",
			(t) => JSON.stringify({ api_key: t.writeKey, event: "a", distinct_id: { id: 1 } }),
			{},
			400,
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].userId", message: "must be a string" },
			]),
		],
		[
			"a forbidden key in properties",
			"/capture/",
			(t) => `{"api_key":"${t.writeKey}","event":"a","properties":{"$set":{"__proto__":{"admin":true}}}}`,
			{},
			400,
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].properties.$set.__proto__", message: "forbidden key" },
			]),
		],
		[
			"a bad usage quantity",
			"/batch/",
			(t) => JSON.stringify({ api_key: t.writeKey, batch: [nodeEvent({ properties: { usage: { sku: "tokens", quantity: -2 } } })] }),
			{},
			400,
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].usage.quantity", message: "must be ≥ 0" },
			]),
		],
		[
			"a usage without a sku",
			"/e/",
			(t) => JSON.stringify([{ event: "a", properties: { token: t.writeKey, usage: { quantity: 1 } } }]),
			{},
			400,
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].usage.sku", message: "must be a string" },
			]),
		],
		["no key", "/capture/", '{"event":"a","distinct_id":"u"}', {}, 401, apiError("unauthorized", "Missing api_key")],
		[
			"an empty api_key",
			"/batch/",
			JSON.stringify({ api_key: "", batch: [nodeEvent()] }),
			{},
			401,
			apiError("unauthorized", "Missing api_key"),
		],
		[
			"a numeric api_key",
			"/batch/",
			JSON.stringify({ api_key: 12345, batch: [nodeEvent()] }),
			{},
			401,
			apiError("unauthorized", "Missing api_key"),
		],
		[
			"an array without a token",
			"/e/",
			'[{"event":"a","properties":{"distinct_id":"u"}}]',
			{},
			401,
			apiError("unauthorized", "Missing api_key"),
		],
		[
			"an unknown api_key",
			"/batch/",
			JSON.stringify({ api_key: "ml_w_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", batch: [nodeEvent()] }),
			{},
			401,
			apiError("unauthorized", "Unknown or revoked key"),
		],
		[
			"an unknown token",
			"/e/",
			'[{"event":"a","properties":{"token":"phc_not_ours"}}]',
			{},
			401,
			apiError("unauthorized", "Unknown or revoked key"),
		],
		[
			"a read key",
			"/batch/",
			(t) => JSON.stringify({ api_key: t.readKey, batch: [nodeEvent()] }),
			{},
			403,
			apiError("forbidden", "A read key cannot use this route"),
		],
	])("answers %s on %s exactly and enqueues nothing", async (_, path, body, headers, status, expected) => {
		const tenant = await createTenant();
		const raw = typeof body === "function" ? await body(tenant) : body;
		await expectRefused(post(path, raw, headers), status, expected);
	});

	it("answers 413 for 1001 events, so posthog-node halves the batch, and takes 1000", async () => {
		const tenant = await createTenant();
		const batch = (n: number) => Array.from({ length: n }, (_, i) => ({ event: "bulk", distinct_id: "u", uuid: `bulk-${i}` }));
		const ok = await send(post("/batch/", { api_key: tenant.writeKey, batch: batch(1000) }));
		expect({ status: ok.status, body: ok.body }).toEqual(OK);
		expect(ok.events.map((event) => event.id)).toEqual(batch(1000).map((event) => event.uuid));

		await expectRefused(
			post("/batch/", { api_key: tenant.writeKey, batch: batch(1001) }),
			413,
			apiError("payload_too_large", "At most 1000 events per request", [{ path: "batch", message: "more than 1000 events" }]),
		);
	});

	/** A valid batch whose JSON is exactly `bytes` long. */
	function batchOfSize(tenant: TestTenant, bytes: number) {
		const body = (pad: number, count: number) => ({
			api_key: tenant.writeKey,
			batch: Array.from({ length: count }, (_, i) => ({
				event: "bulk",
				distinct_id: "u",
				uuid: `big-${i}`,
				properties: { pad: "z".repeat(i === count - 1 ? pad : 30_000) },
			})),
		});
		const count = Math.ceil(bytes / 30_050);
		const pad = bytes - jsonBytes(body(0, count));
		const out = body(pad, count);
		expect(pad).toBeGreaterThanOrEqual(0);
		expect(pad).toBeLessThan(30_000);
		expect(jsonBytes(out)).toBe(bytes);
		return out;
	}

	it("answers 413 for a body over 1 MiB, and takes one of exactly 1 MiB", async () => {
		const tenant = await createTenant();
		const ok = await send(post("/batch/", batchOfSize(tenant, MiB)));
		expect({ status: ok.status, body: ok.body }).toEqual(OK);
		expect(ok.events).toHaveLength(35);
		await expectRefused(post("/batch/", batchOfSize(tenant, MiB + 1)), 413, tooLarge);
	});

	it.each([
		["Content-Encoding: gzip", "/batch/", { "content-encoding": "gzip" }],
		["?compression=gzip-js", "/batch/?compression=gzip-js", {}],
	])("answers 413 for a %s body over 1 MiB once decompressed, and takes one of exactly 1 MiB", async (_, path, headers) => {
		const tenant = await createTenant();
		const exact = await gzip(batchOfSize(tenant, MiB));
		const over = await gzip(batchOfSize(tenant, MiB + 1));
		// Both compress far below the limit: only the decompressed size can be refused.
		expect(over.byteLength).toBeLessThan(MiB / 10);
		const ok = await send(post(path, exact, headers));
		expect({ status: ok.status, body: ok.body }).toEqual(OK);
		expect(ok.events).toHaveLength(35);
		await expectRefused(post(path, over, headers), 413, tooLarge);
	});

	it("answers 405 with Allow for a GET", async () => {
		await expectPostOnly("/e/");
	});
});

describe("rate limit", () => {
	it("answers 429 with Retry-After once the tenant passes 1000 requests a minute", async () => {
		const tenant = await createTenant();
		// Each request passes the key and the limiter, then fails validation: nothing is ever enqueued.
		await expectRateLimited(() => send(post("/batch/", { api_key: tenant.writeKey, batch: [] })));
	});
});
