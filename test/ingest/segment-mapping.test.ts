// Segment's HTTP Tracking API: each call type becomes exactly one Meterline event, a batch is
// accepted in part (each invalid message rejected alone), and every request with no valid event is
// refused with its exact status and body, enqueueing nothing.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant, type TestTenant } from "../helpers/api";
import { jsonBytes, UUID_V7 } from "../producer/helpers";
import {
	apiError,
	basicAuth,
	CORRECTED,
	expectPostOnly,
	expectRateLimited,
	expectRefused,
	post,
	receiveAtFrozenTime,
	RECEIVED,
	rejectionsOf,
	send,
	SENT_AT,
	TIMESTAMP,
} from "./helpers";

const CONTEXT = { library: { name: "analytics-node", version: "3.1.0" }, ip: "203.0.113.9", locale: "en-GB" };
const ALL_TYPES = "track, identify, page, screen, group, alias";

const auth = (tenant: TestTenant) => ({ authorization: basicAuth(tenant.writeKey) });

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
		const result = await send(post(path, { ...message, context: CONTEXT, timestamp: TIMESTAMP, sentAt: SENT_AT }, auth(tenant)));
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
		const result = await send(post("/v1/batch", { batch, sentAt: SENT_AT }, auth(tenant)));
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
			{ id: "b-5", event: "$group", userId: "user-1", timestamp: CORRECTED, properties: { groupId: "org-1" } },
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
		const result = await send(post("/v1/track", message, auth(tenant)));
		expect(result.status).toBe(200);
		expect(result.events).toEqual<QueuedEvent[]>([{ id: "ahead-1", event: "a", timestamp: CORRECTED }]);
	});

	it("takes a timestamp as sent when there is no sentAt, and the receive time when there is no timestamp", async () => {
		const tenant = await createTenant();
		const batch = [
			{ type: "track", messageId: "t-1", event: "a", timestamp: "2026-11-20T09:59:00.123Z" },
			{ type: "track", event: "b", userId: "user-2" },
		];
		const result = await send(post("/v1/batch", { batch }, auth(tenant)));
		expect(result.status).toBe(200);
		expect(result.events).toEqual<QueuedEvent[]>([
			{ id: "t-1", event: "a", timestamp: Date.parse("2026-11-20T09:59:00.123Z") },
			{ id: expect.stringMatching(UUID_V7), event: "b", userId: "user-2", timestamp: RECEIVED },
		]);
	});
});

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
			[{ place: "batch[0]", eventId: "p-2", issues: [{ path: "batch[0].type", message: `must be one of ${ALL_TYPES}` }] }],
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
		const result = await send(post("/v1/batch", { batch }, auth(tenant)));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { success: true } });
		expect(result.events).toEqual(accepted);
		const kept = await rejectionsOf(tenant);
		expect(kept.map(({ place, eventId, issues }) => ({ place, eventId, issues }))).toEqual(rejected);
		expect(kept.map(({ receivedAt, source }) => ({ receivedAt, source }))).toEqual(
			rejected.map(() => ({ receivedAt: new Date(RECEIVED).toISOString(), source: "segment" })),
		);
	});
});

describe("validation", () => {
	it.each<[string, string, string, unknown]>([
		[
			"invalid JSON",
			"/v1/track",
			'{"event":',
			apiError("invalid_request", "Request body is not valid JSON", [{ path: "body", message: "invalid JSON" }]),
		],
		["an empty body", "/v1/track", "", apiError("invalid_request", "Request body is empty", [{ path: "body", message: "empty" }])],
		[
			"a JSON array",
			"/v1/batch",
			'[{"type":"track","event":"a"}]',
			apiError("invalid_request", "body: must be a JSON object", [{ path: "body", message: "must be a JSON object" }]),
		],
		[
			"a JSON string",
			"/v1/identify",
			'"hello"',
			apiError("invalid_request", "body: must be a JSON object", [{ path: "body", message: "must be a JSON object" }]),
		],
		[
			"JSON null",
			"/v1/page",
			"null",
			apiError("invalid_request", "body: must be a JSON object", [{ path: "body", message: "must be a JSON object" }]),
		],
		[
			"a batch that is not an array",
			"/v1/batch",
			'{"batch":{"type":"track","event":"a"}}',
			apiError("invalid_request", "batch: must be a non-empty array", [{ path: "batch", message: "must be a non-empty array" }]),
		],
		[
			"a missing batch",
			"/v1/batch",
			'{"type":"track","event":"a"}',
			apiError("invalid_request", "batch: must be a non-empty array", [{ path: "batch", message: "must be a non-empty array" }]),
		],
		[
			"an empty batch",
			"/v1/batch",
			'{"batch":[]}',
			apiError("invalid_request", "batch: must be a non-empty array", [{ path: "batch", message: "must be a non-empty array" }]),
		],
		[
			"a batch whose only entry is not an object",
			"/v1/batch",
			'{"batch":["b"]}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0]", message: "must be an object" },
			]),
		],
		[
			"a batch whose entries are an unknown type and null",
			"/v1/batch",
			'{"batch":[{"type":"purchase","event":"b"},null]}',
			apiError("invalid_request", "2 invalid events; nothing was accepted", [
				{ index: 0, path: "batch[0].type", message: `must be one of ${ALL_TYPES}` },
				{ index: 1, path: "batch[1]", message: "must be an object" },
			]),
		],
		[
			"a missing type in a batch",
			"/v1/batch",
			'{"batch":[{"event":"a"}]}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].type", message: `must be one of ${ALL_TYPES}` },
			]),
		],
		// An inherited Object.prototype member is no Segment call type either.
		...(["toString", "constructor", "__proto__"] as const).map((type): [string, string, string, unknown] => [
			`the type ${type}`,
			"/v1/batch",
			JSON.stringify({ batch: [{ type, event: "a" }] }),
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].type", message: `must be one of ${ALL_TYPES}` },
			]),
		]),
		[
			"a track without an event",
			"/v1/track",
			'{"userId":"u1","properties":{"a":1}}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "$.event", message: "must be a string" },
			]),
		],
		[
			"a batch of an identify with a bad userId and a track without an event",
			"/v1/batch",
			'{"batch":[{"type":"identify","userId":true},{"type":"track","userId":"u"}]}',
			apiError("invalid_request", "2 invalid events; nothing was accepted", [
				{ index: 0, path: "batch[0].userId", message: "must be a string" },
				{ index: 1, path: "batch[1].event", message: "must be a string" },
			]),
		],
		[
			"a negative usage quantity",
			"/v1/track",
			'{"event":"a","properties":{"usage":{"sku":"tokens","quantity":-1}}}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "$.usage.quantity", message: "must be ≥ 0" },
			]),
		],
		[
			"a usage quantity given as a string that is not a decimal",
			"/v1/batch",
			'{"batch":[{"type":"track","event":"a","properties":{"usage":{"sku":"tokens","quantity":"2 tokens"}}}]}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{
					index: 0,
					path: "batch[0].usage.quantity",
					message: "must be a number, or a decimal string with at most 6 fraction digits",
				},
			]),
		],
		[
			"a usage quantity with 7 fraction digits",
			"/v1/page",
			'{"name":"p","properties":{"usage":{"sku":"tokens","quantity":0.0000001}}}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "$.usage.quantity", message: "has more than 6 fraction digits" },
			]),
		],
		[
			"a forbidden key in traits",
			"/v1/identify",
			'{"userId":"u","traits":{"__proto__":{"admin":true}}}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "$.properties.__proto__", message: "forbidden key" },
			]),
		],
		[
			"a forbidden key in context",
			"/v1/batch",
			'{"batch":[{"type":"page","name":"p","context":{"constructor":{"x":1}}}]}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].properties.context.constructor", message: "forbidden key" },
			]),
		],
		[
			"a timestamp that is no ISO date-time",
			"/v1/track",
			'{"event":"a","timestamp":"yesterday","sentAt":"2026-11-20T10:00:05.000Z"}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "$.timestamp", message: "must be an ISO 8601 date-time or epoch milliseconds" },
			]),
		],
	])("answers %s on %s exactly and enqueues nothing", async (_, path, body, expected) => {
		const tenant = await createTenant();
		await expectRefused(post(path, body, auth(tenant)), 400, expected);
	});

	it("refuses a message over 32 KB, and takes one of exactly 32 KB", async () => {
		const tenant = await createTenant();
		const message = (padBytes: number) => ({ event: "big", userId: "u", properties: { pad: "x".repeat(padBytes) } });
		const exact = message(32 * 1024 - jsonBytes(message(0)));
		expect(jsonBytes(exact)).toBe(32 * 1024);
		const ok = await send(post("/v1/track", exact, auth(tenant)));
		expect(ok.status).toBe(200);
		expect(ok.events).toHaveLength(1);

		const over = message(32 * 1024 + 1 - jsonBytes(message(0)));
		await expectRefused(
			post("/v1/track", over, auth(tenant)),
			400,
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "$", message: "is 32769 bytes, over Segment's 32 KB limit" },
			]),
		);
	});

	it("refuses a batch body over 500 KB with 400 payload_too_large, and takes one of exactly 500 KB", async () => {
		const tenant = await createTenant();
		const limit = 500 * 1024;
		const entry = (i: number, padBytes: number) => ({
			type: "track",
			messageId: `m-${i}`,
			event: "bulk",
			properties: { pad: "y".repeat(padBytes) },
		});
		const body = (lastPad: number) => ({ batch: Array.from({ length: 17 }, (_, i) => entry(i, i === 16 ? lastPad : 30_000)) });
		const lastPad = limit - jsonBytes(body(0));
		expect(lastPad).toBeLessThan(32_000);
		expect(jsonBytes(body(lastPad))).toBe(limit);

		const ok = await send(post("/v1/batch", body(lastPad), auth(tenant)));
		expect(ok.status).toBe(200);
		expect(ok.events.map((event) => event.id)).toEqual(Array.from({ length: 17 }, (_, i) => `m-${i}`));

		await expectRefused(
			post("/v1/batch", body(lastPad + 1), auth(tenant)),
			400,
			apiError("payload_too_large", `Request body exceeds ${limit} bytes`, [{ path: "body", message: `larger than ${limit} bytes` }]),
		);
	});

	it("answers 401 without a write key", async () => {
		await expectRefused(post("/v1/track", { event: "a" }), 401, apiError("unauthorized", "Missing write key (HTTP Basic or writeKey)"));
	});

	it("answers 401 for Basic credentials with an empty user and no writeKey", async () => {
		await expectRefused(
			post("/v1/track", { event: "a" }, { authorization: `Basic ${btoa(":")}` }),
			401,
			apiError("unauthorized", "Missing write key (HTTP Basic or writeKey)"),
		);
	});

	it.each([
		[
			"an unknown Basic key",
			(_: TestTenant) => post("/v1/track", { event: "a" }, { authorization: basicAuth("ml_w_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") }),
		],
		[
			"an unknown writeKey",
			(_: TestTenant) => post("/v1/identify", { userId: "u", writeKey: "ml_w_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }),
		],
		["a revoked-looking short key", (_: TestTenant) => post("/v1/batch", { batch: [{ type: "track", event: "a" }], writeKey: "nope" })],
		[
			"a tampered write key",
			(tenant: TestTenant) => post("/v1/track", { event: "a" }, { authorization: basicAuth(`${tenant.writeKey.slice(0, -1)}A`) }),
		],
	])("answers 401 for %s", async (_, request) => {
		const tenant = await createTenant();
		await expectRefused(request(tenant), 401, apiError("unauthorized", "Unknown or revoked key"));
	});

	it.each([
		["over HTTP Basic", (tenant: TestTenant) => post("/v1/track", { event: "a" }, { authorization: basicAuth(tenant.readKey) })],
		["as writeKey", (tenant: TestTenant) => post("/v1/batch", { batch: [{ type: "track", event: "a" }], writeKey: tenant.readKey })],
	])("answers 403 for a read key %s", async (_, request) => {
		const tenant = await createTenant();
		await expectRefused(request(tenant), 403, apiError("forbidden", "A read key cannot use this route"));
	});

	it("answers 405 with Allow for a GET", async () => {
		await expectPostOnly("/v1/track");
	});
});

describe("rate limit", () => {
	it("answers 429 with Retry-After once the tenant passes 1000 requests a minute", async () => {
		const tenant = await createTenant();
		// Each request passes the key and the limiter, then fails as a whole: nothing is enqueued or kept.
		await expectRateLimited(() => send(post("/v1/batch", { batch: [] }, auth(tenant))));
	});
});
