// PostHog's capture API refusing a request with no valid event, exactly and enqueueing nothing: bad
// and gzip bodies, bad events, keys, the 1000-event and 1 MiB limits (also once decompressed),
// methods, and the rate limit.
import { describe, expect, it } from "vitest";
import { createTenant, jsonBytes, type TestTenant } from "../helpers";
import { apiError, expectPostOnly, expectRateLimited, expectRefused, gzip, nodeEvent, post, POSTHOG_OK, send, UUID_2 } from "./helpers";

const MiB = 1_048_576;

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
		expect({ status: ok.status, body: ok.body }).toEqual(POSTHOG_OK);
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
		expect({ status: ok.status, body: ok.body }).toEqual(POSTHOG_OK);
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
		expect({ status: ok.status, body: ok.body }).toEqual(POSTHOG_OK);
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
