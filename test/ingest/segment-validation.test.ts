// Segment's HTTP Tracking API refusing a request with no valid event, with its exact status and
// body and nothing enqueued: bad bodies and messages, size limits, keys, methods, and the rate limit.
import { describe, expect, it } from "vitest";
import { createTenant, jsonBytes, type TestTenant } from "../helpers";
import { apiError, basicAuth, expectPostOnly, expectRateLimited, expectRefused, post, SEGMENT_TYPES, segmentAuth, send } from "./helpers";

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
				{ index: 0, path: "batch[0].type", message: `must be one of ${SEGMENT_TYPES}` },
				{ index: 1, path: "batch[1]", message: "must be an object" },
			]),
		],
		[
			"a missing type in a batch",
			"/v1/batch",
			'{"batch":[{"event":"a"}]}',
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].type", message: `must be one of ${SEGMENT_TYPES}` },
			]),
		],
		// An inherited Object.prototype member is no Segment call type either.
		...(["toString", "constructor", "__proto__"] as const).map((type): [string, string, string, unknown] => [
			`the type ${type}`,
			"/v1/batch",
			JSON.stringify({ batch: [{ type, event: "a" }] }),
			apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].type", message: `must be one of ${SEGMENT_TYPES}` },
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
		await expectRefused(post(path, body, segmentAuth(tenant)), 400, expected);
	});

	it("refuses a message over 32 KB, and takes one of exactly 32 KB", async () => {
		const tenant = await createTenant();
		const message = (padBytes: number) => ({ event: "big", userId: "u", properties: { pad: "x".repeat(padBytes) } });
		const exact = message(32 * 1024 - jsonBytes(message(0)));
		expect(jsonBytes(exact)).toBe(32 * 1024);
		const ok = await send(post("/v1/track", exact, segmentAuth(tenant)));
		expect(ok.status).toBe(200);
		expect(ok.events).toHaveLength(1);

		const over = message(32 * 1024 + 1 - jsonBytes(message(0)));
		await expectRefused(
			post("/v1/track", over, segmentAuth(tenant)),
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

		const ok = await send(post("/v1/batch", body(lastPad), segmentAuth(tenant)));
		expect(ok.status).toBe(200);
		expect(ok.events.map((event) => event.id)).toEqual(Array.from({ length: 17 }, (_, i) => `m-${i}`));

		await expectRefused(
			post("/v1/batch", body(lastPad + 1), segmentAuth(tenant)),
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
		await expectRateLimited(() => send(post("/v1/batch", { batch: [] }, segmentAuth(tenant))));
	});
});
