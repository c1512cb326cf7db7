// The browser SDKs' own transports: analytics.js's text/plain fetches to /v1/t … /v1/b with the
// key in Basic auth or the body, and posthog-js's gzip and base64 sendBeacon bodies. The config
// answers posthog-js asks for at start are in posthog-config.test.ts.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant, type TestTenant } from "../helpers";
import {
	apiError,
	basicAuth,
	CORRECTED,
	gzip,
	post,
	POSTHOG_OK,
	receiveAtFrozenTime,
	send,
	SENT_AT,
	TIMESTAMP,
	UUID_1,
	UUID_2,
} from "./helpers";

const ORIGIN = "https://shop.example";
const TEXT = { "content-type": "text/plain", origin: ORIGIN };
const FORM = { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN };

/** An analytics.js (@segment/analytics-next) message as its fetch dispatcher sends it. */
function ajsMessage(tenant: TestTenant, overrides: Record<string, unknown> = {}) {
	return {
		type: "track",
		event: "Signed Up",
		properties: { plan: "pro" },
		messageId: "ajs-next-1",
		anonymousId: "anon-1",
		userId: null,
		timestamp: TIMESTAMP,
		integrations: {},
		context: { library: { name: "analytics.js", version: "npm:next-1.84.3" } },
		writeKey: tenant.writeKey,
		sentAt: SENT_AT,
		_metadata: { bundled: ["Segment.io"], unbundled: [], bundledIds: [] },
		...overrides,
	};
}

const AJS_CONTEXT = { library: { name: "analytics.js", version: "npm:next-1.84.3" } };

/** posthog-js's base64 encoding: base64 of the JSON's UTF-8 bytes, sent as the form field `data`. */
function base64Form(data: unknown): string {
	const bytes = new TextEncoder().encode(JSON.stringify(data));
	return `data=${encodeURIComponent(btoa(String.fromCharCode(...bytes)))}`;
}

/** A posthog-js batch entry: the key travels in properties.token. */
function jsEvent(tenant: TestTenant, overrides: Record<string, unknown> = {}) {
	return {
		event: "$pageview",
		uuid: UUID_1,
		timestamp: TIMESTAMP,
		properties: { token: tenant.writeKey, distinct_id: "anon-1", $current_url: "https://shop.example/" },
		...overrides,
	};
}

describe("analytics.js transports", () => {
	receiveAtFrozenTime();

	it.each([
		["/v1/t", {}, "Signed Up", { plan: "pro", context: AJS_CONTEXT }],
		[
			"/v1/p",
			{ type: "page", event: undefined, name: "Pricing", properties: { path: "/pricing" } },
			"$page",
			{ path: "/pricing", name: "Pricing", context: AJS_CONTEXT },
		],
		[
			"/v1/i",
			{ type: "identify", event: undefined, properties: undefined, traits: { plan: "team" } },
			"$identify",
			{ plan: "team", context: AJS_CONTEXT },
		],
	])("accepts a text/plain %s with the key in Basic auth and in the body", async (path, overrides, event, properties) => {
		const tenant = await createTenant();
		const result = await send(post(path, ajsMessage(tenant, overrides), { ...TEXT, authorization: basicAuth(tenant.writeKey) }));
		expect({ status: result.status, body: result.body, tenants: result.tenants }).toEqual({
			status: 200,
			body: { success: true },
			tenants: [tenant.id],
		});
		expect(result.events).toEqual<QueuedEvent[]>([{ id: "ajs-next-1", event, userId: "anon-1", timestamp: CORRECTED, properties }]);
	});

	it("accepts a text/plain /v1/t with the key only in the body's writeKey", async () => {
		const tenant = await createTenant();
		const result = await send(post("/v1/t", ajsMessage(tenant), TEXT));
		expect({ status: result.status, events: result.events.map((e) => e.id) }).toEqual({ status: 200, events: ["ajs-next-1"] });
	});

	it("accepts the batching strategy's /v1/b, whose messages carry no sentAt of their own", async () => {
		const tenant = await createTenant();
		const { sentAt: _, writeKey: __, ...message } = ajsMessage(tenant);
		const body = {
			writeKey: tenant.writeKey,
			sentAt: SENT_AT,
			batch: [message, { ...message, messageId: "ajs-next-2", event: "Upgraded" }],
		};
		const result = await send(post("/v1/b", body, { ...TEXT, authorization: basicAuth(tenant.writeKey) }));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { success: true } });
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: "ajs-next-1",
				event: "Signed Up",
				userId: "anon-1",
				timestamp: CORRECTED,
				properties: { plan: "pro", context: AJS_CONTEXT },
			},
			{
				id: "ajs-next-2",
				event: "Upgraded",
				userId: "anon-1",
				timestamp: CORRECTED,
				properties: { plan: "pro", context: AJS_CONTEXT },
			},
		]);
	});
});

describe("analytics.js delivery metrics", () => {
	it("acknowledges POST /v1/m, the SDK's own metrics sent to its API host, and keeps nothing", async () => {
		const body = { series: [{ type: "Counter", metric: "analytics_js.invoke", value: 1, tags: { library: "analytics.js" } }] };
		const result = await send(post("/v1/m", body, TEXT));
		expect({
			status: result.status,
			origin: result.headers.get("access-control-allow-origin"),
			body: result.body,
			events: result.events,
		}).toEqual({
			status: 200,
			origin: ORIGIN,
			body: { success: true },
			events: [],
		});
	});
});

describe("posthog-js transports", () => {
	receiveAtFrozenTime();

	it("accepts a sendBeacon base64 form body, UTF-8 included", async () => {
		const tenant = await createTenant();
		const batch = [jsEvent(tenant, { properties: { token: tenant.writeKey, distinct_id: "anon-1", title: "Café ☕ 🚀" } })];
		const result = await send(post("/e/?compression=base64&ver=1.449.2", base64Form(batch), FORM));
		expect({ status: result.status, body: result.body, tenants: result.tenants }).toEqual({ ...POSTHOG_OK, tenants: [tenant.id] });
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: UUID_1,
				event: "$pageview",
				userId: "anon-1",
				timestamp: Date.parse(TIMESTAMP),
				properties: { distinct_id: "anon-1", title: "Café ☕ 🚀" },
			},
		]);
	});

	it("accepts a sendBeacon gzip-js body sent as a text/plain Blob", async () => {
		const tenant = await createTenant();
		const body = await gzip([jsEvent(tenant), jsEvent(tenant, { uuid: UUID_2, event: "clicked" })]);
		const result = await send(post("/i/v0/e/?compression=gzip-js&ip=0&_=1763632805000&ver=1.449.2", body, TEXT));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.events.map((e) => [e.id, e.event])).toEqual([
			[UUID_1, "$pageview"],
			[UUID_2, "clicked"],
		]);
	});

	it("accepts gzip with no compression flag, told by its magic bytes, as posthog-js now sends it", async () => {
		const tenant = await createTenant();
		const body = await gzip({ api_key: tenant.writeKey, batch: [jsEvent(tenant)], sent_at: SENT_AT });
		const result = await send(post("/e/?ip=0&ver=1.449.2", body, TEXT));
		expect({ status: result.status, body: result.body }).toEqual(POSTHOG_OK);
		expect(result.events).toEqual<QueuedEvent[]>([
			{
				id: UUID_1,
				event: "$pageview",
				userId: "anon-1",
				timestamp: CORRECTED,
				properties: { distinct_id: "anon-1", $current_url: "https://shop.example/" },
			},
		]);
	});

	it("accepts an uncompressed form body whose data is the JSON itself", async () => {
		const tenant = await createTenant();
		const result = await send(post("/e/", `data=${encodeURIComponent(JSON.stringify(jsEvent(tenant)))}`, FORM));
		expect({ status: result.status, events: result.events.map((e) => e.id) }).toEqual({ status: 200, events: [UUID_1] });
	});

	it.each([
		["a form without data", "/e/?compression=base64", "batch=x", "data", "is missing from the form body"],
		["data that is not base64", "/e/?compression=base64", "data=%%%", "data", "is not valid base64"],
		["data with a character outside base64", "/e/?compression=base64", "data=ab%24cd", "data", "is not valid base64"],
	])("answers 400 for %s, enqueueing nothing", async (_name, path, body, field, message) => {
		const result = await send(post(path, body, FORM));
		expect({ status: result.status, body: result.body, events: result.events }).toEqual({
			status: 400,
			body: apiError("invalid_request", `${field}: ${message}`, [{ path: field, message }]),
			events: [],
		});
	});

	it("answers 400 naming body when the base64 is not of JSON", async () => {
		const result = await send(post("/e/?compression=base64", `data=${encodeURIComponent(btoa("not json"))}`, FORM));
		expect({ status: result.status, body: result.body }).toEqual({
			status: 400,
			body: apiError("invalid_request", "Request body is not valid JSON", [{ path: "body", message: "invalid JSON" }]),
		});
	});
});
