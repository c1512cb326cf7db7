// CORS: the write-key ingest routes answer a preflight from any origin and label every answer
// with the caller's origin; a tenant's allowed origins refuse the others (nothing enqueued); read,
// admin and dashboard routes never speak CORS. Setting the list is in cors-settings.test.ts.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BASE, call, createTenant, d1Outage, eventsRequest, fetchWith, ingest, RecordingQueue, type TestTenant } from "../helpers";
import { apiError, basicAuth, post, putOrigins, send } from "./helpers";

afterEach(() => {
	vi.restoreAllMocks();
});

const ORIGIN = "https://shop.example";
const OTHER = "https://evil.example";

/** A browser's preflight for a POST with Segment's headers. */
function preflightRequest(path: string, origin = ORIGIN, method = "POST"): Request {
	return new Request(BASE + path, {
		method: "OPTIONS",
		headers: { origin, "access-control-request-method": method, "access-control-request-headers": "authorization,content-type" },
	});
}

/** Every access-control-* header and Vary of an answer. */
function corsHeaders(response: { headers: Headers }): Record<string, string> {
	return Object.fromEntries([...response.headers].filter(([name]) => name.startsWith("access-control-") || name === "vary"));
}

const PREFLIGHT_POST = {
	"access-control-allow-origin": ORIGIN,
	"access-control-allow-methods": "POST",
	"access-control-allow-headers": "authorization, content-type, content-encoding, x-retry-count",
	"access-control-max-age": "7200",
	vary: "Origin",
};
/** What an answer to a browser request from ORIGIN carries. */
const ANSWER_HEADERS = { "access-control-allow-origin": ORIGIN, "access-control-expose-headers": "retry-after", vary: "Origin" };

const track = (tenant: TestTenant, origin: string | null, event = "Signed Up") =>
	post(
		"/v1/track",
		{ userId: "u1", event, messageId: crypto.randomUUID() },
		{ authorization: basicAuth(tenant.writeKey), "content-type": "text/plain", ...(origin === null ? {} : { origin }) },
	);
const capture = (tenant: TestTenant, origin: string) =>
	post("/e/", [{ event: "$pageview", properties: { token: tenant.writeKey, distinct_id: "u1" } }], {
		"content-type": "text/plain",
		origin,
	});
const events = (tenant: TestTenant, origin: string) => {
	const request = eventsRequest('{"event":"a"}', tenant.writeKey);
	request.headers.set("origin", origin);
	return request;
};

async function allowOnly(tenant: TestTenant, origins: string[] | null): Promise<void> {
	const response = await putOrigins(tenant, { allowedOrigins: origins });
	expect(response.status).toBe(200);
}

const REFUSED = apiError("forbidden", "This origin may not send with this tenant's write key", [
	{ path: "origin", message: "is not in the tenant's allowed origins" },
]);

describe("preflight", () => {
	it.each([
		"/v1/events",
		"/v1/track",
		"/v1/identify",
		"/v1/page",
		"/v1/screen",
		"/v1/group",
		"/v1/alias",
		"/v1/batch",
		"/v1/t",
		"/v1/i",
		"/v1/p",
		"/v1/s",
		"/v1/g",
		"/v1/a",
		"/v1/b",
		"/batch/",
		"/capture/",
		"/e/",
		"/i/v0/e/",
	])("answers a preflight for POST %s with 204 and the asking origin", async (path) => {
		const response = await exports.default.fetch(preflightRequest(path));
		expect({ status: response.status, headers: corsHeaders(response), body: await response.text() }).toEqual({
			status: 204,
			headers: PREFLIGHT_POST,
			body: "",
		});
	});

	it.each(["/flags/?v=2", "/decide/?v=3"])("allows POST and GET on %s", async (path) => {
		const response = await exports.default.fetch(preflightRequest(path));
		expect({ status: response.status, headers: corsHeaders(response) }).toEqual({
			status: 204,
			headers: { ...PREFLIGHT_POST, "access-control-allow-methods": "POST, GET" },
		});
	});

	it("answers any origin's preflight, since it carries no key, even for a tenant that allows only one", async () => {
		const tenant = await createTenant();
		await allowOnly(tenant, [ORIGIN]);
		const response = await exports.default.fetch(preflightRequest("/v1/track", OTHER));
		expect({ status: response.status, origin: response.headers.get("access-control-allow-origin") }).toEqual({
			status: 204,
			origin: OTHER,
		});
	});

	it("answers a bare OPTIONS, which is no preflight, with 405 as before", async () => {
		const response = await call("/v1/track", { method: "OPTIONS" });
		expect({ status: response.status, allow: response.headers.get("allow"), headers: corsHeaders(response) }).toEqual({
			status: 405,
			allow: "POST",
			headers: {},
		});
	});

	it.each([
		["/v1/stats", 405],
		["/v1/usage", 405],
		["/v1/flush", 405],
		["/v1/rejections", 405],
		["/v1/settings/cors", 405],
		["/v1/admin/tenants", 405],
		["/v1/admin/metrics", 405],
		["/dashboard", 405],
		["/v1/nowhere", 404],
	])("answers a preflight to %s with %i and no CORS header", async (path, status) => {
		const response = await exports.default.fetch(preflightRequest(path, ORIGIN, "GET"));
		expect({ status: response.status, headers: corsHeaders(response) }).toEqual({ status, headers: {} });
	});
});

describe("answers to browser requests", () => {
	it("accepts a Segment track from any origin by default and labels the answer with it", async () => {
		const tenant = await createTenant();
		const result = await send(track(tenant, ORIGIN));
		expect({ status: result.status, headers: corsHeaders(result), body: result.body }).toEqual({
			status: 200,
			headers: ANSWER_HEADERS,
			body: { success: true },
		});
		expect(result.events.map((event) => event.event)).toEqual(["Signed Up"]);
	});

	it("labels error answers too, so the page can read them", async () => {
		const response = await call("/v1/track", {
			method: "POST",
			headers: { origin: ORIGIN, "content-type": "text/plain" },
			body: JSON.stringify({ event: "a", userId: "u" }),
		});
		expect({ status: response.status, headers: corsHeaders(response), body: await response.json() }).toEqual({
			status: 401,
			headers: ANSWER_HEADERS,
			body: apiError("unauthorized", "Missing write key (HTTP Basic or writeKey)"),
		});
	});

	it("adds Vary: Origin but no Allow-Origin to a request without Origin (a server SDK)", async () => {
		const tenant = await createTenant();
		const result = await send(track(tenant, null));
		expect({ status: result.status, headers: corsHeaders(result) }).toEqual({ status: 200, headers: { vary: "Origin" } });
	});

	it.each([
		["GET /v1/stats", "/v1/stats?granularity=hour", "read"],
		["GET /v1/usage", "/v1/usage", "read"],
		["GET /v1/settings/cors", "/v1/settings/cors", "read"],
		["GET /v1/admin/metrics", "/v1/admin/metrics", "admin"],
	] as const)("never labels %s, whatever the Origin", async (_name, path, who) => {
		const tenant = await createTenant();
		const key = who === "read" ? tenant.readKey : "test-admin-token";
		const response = await call(path, { key, headers: { origin: ORIGIN } });
		expect({ status: response.status, headers: corsHeaders(response) }).toEqual({ status: 200, headers: {} });
	});
});

describe("a tenant's allowed origins", () => {
	it("accepts an allowed origin on every ingest API and labels the answers", async () => {
		const tenant = await createTenant();
		await allowOnly(tenant, [ORIGIN, "http://localhost:5173"]);
		const results = [await send(track(tenant, ORIGIN)), await send(capture(tenant, ORIGIN)), await send(events(tenant, ORIGIN))];
		expect(
			results.map((r) => ({ status: r.status, origin: r.headers.get("access-control-allow-origin"), events: r.events.length })),
		).toEqual([
			{ status: 200, origin: ORIGIN, events: 1 },
			{ status: 200, origin: ORIGIN, events: 1 },
			{ status: 202, origin: ORIGIN, events: 1 },
		]);
	});

	it("refuses any other origin with 403, no CORS header and nothing enqueued, on every ingest API", async () => {
		const tenant = await createTenant();
		await allowOnly(tenant, [ORIGIN]);
		for (const request of [track(tenant, OTHER), capture(tenant, OTHER), events(tenant, OTHER)]) {
			const result = await send(request);
			expect({ status: result.status, headers: corsHeaders(result), body: result.body, events: result.events }).toEqual({
				status: 403,
				headers: {},
				body: REFUSED,
				events: [],
			});
		}
	});

	it("still accepts a request without Origin: the list is about browsers, not servers", async () => {
		const tenant = await createTenant();
		await allowOnly(tenant, [ORIGIN]);
		const result = await send(track(tenant, null));
		expect({ status: result.status, events: result.events.length }).toEqual({ status: 200, events: 1 });
	});

	it("refuses every browser origin with an empty list, and allows any again after null", async () => {
		const tenant = await createTenant();
		await allowOnly(tenant, []);
		expect((await send(track(tenant, ORIGIN))).status).toBe(403);
		await allowOnly(tenant, null);
		expect((await send(track(tenant, OTHER))).status).toBe(200);
	});

	it("leaves other tenants' defaults alone", async () => {
		const locked = await createTenant();
		const open = await createTenant();
		await allowOnly(locked, [ORIGIN]);
		expect([(await send(track(locked, OTHER))).status, (await send(track(open, OTHER))).status]).toEqual([403, 200]);
	});

	it("answers 503 with Retry-After when D1 cannot say which origins are allowed", async () => {
		const tenant = await createTenant();
		// A request without Origin verifies the key (cached for 60 s) without reading the origins.
		expect((await send(track(tenant, null))).status).toBe(200);
		const errors = vi.spyOn(console, "error").mockImplementation(() => {});
		const outage = d1Outage();
		const queue = new RecordingQueue();
		const ctx = createExecutionContext();
		const response = await fetchWith(track(tenant, ORIGIN), queue, ctx, { DB: outage.db });
		await waitOnExecutionContext(ctx);
		expect({ status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.json() }).toEqual({
			status: 503,
			retryAfter: "5",
			body: apiError("unavailable", "Origin check is unavailable; retry shortly"),
		});
		expect(queue.messages).toEqual([]);
		expect(errors.mock.calls.map((args) => args[0])).toEqual(["allowed origins lookup failed"]);
	});
});

describe("the write-key routes a browser may call", () => {
	it("are refused for an allowed origin when the key is wrong, with the answer still labelled", async () => {
		const { response } = await ingest(
			new Request(`${BASE}/e/`, {
				method: "POST",
				headers: { origin: ORIGIN, "content-type": "text/plain" },
				body: JSON.stringify([{ event: "a", properties: { token: "ml_w_nope" } }]),
			}),
		);
		expect({ status: response.status, origin: response.headers.get("access-control-allow-origin") }).toEqual({
			status: 401,
			origin: ORIGIN,
		});
	});
});
