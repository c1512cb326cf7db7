// Who may call what on the tenant routes: every route against no key, garbage keys and the wrong
// scope; the Segment and PostHog routes against no key, garbage, a read key and the admin token.
import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMIN_TOKEN, call, createTenant, eventsRequest, ingest, type TestTenant } from "../helpers";
import { expectError, routeName, sha256Hex } from "./helpers";

afterEach(() => {
	vi.useRealTimers();
});

type Scope = "write" | "read";

interface TenantRoute {
	method: string;
	path: string;
	/** The scopes whose key the route accepts. */
	scopes: Scope[];
	body?: string;
	/** The status the right key gets. */
	ok: number;
}

const TENANT_ROUTES: TenantRoute[] = [
	{ method: "POST", path: "/v1/events", scopes: ["write"], body: '{"event":"a"}', ok: 202 },
	{ method: "POST", path: "/v1/flush", scopes: ["write", "read"], ok: 200 },
	{ method: "GET", path: "/v1/usage", scopes: ["read"], ok: 200 },
	{ method: "GET", path: "/v1/stats", scopes: ["read"], ok: 200 },
	{ method: "GET", path: "/v1/metrics", scopes: ["read"], ok: 200 },
	{ method: "GET", path: "/v1/rejections", scopes: ["read"], ok: 200 },
	{ method: "POST", path: "/v1/meters", scopes: ["read"], body: '{"slug":"m","eventType":"a","aggregation":"COUNT"}', ok: 201 },
	{ method: "GET", path: "/v1/meters", scopes: ["read"], ok: 200 },
	// A fresh tenant has no meter m: 404 is the answer an accepted key gets.
	{ method: "GET", path: "/v1/meters/m", scopes: ["read"], ok: 404 },
	{ method: "DELETE", path: "/v1/meters/m", scopes: ["read"], ok: 404 },
	{
		method: "POST",
		path: "/v1/plans",
		scopes: ["read"],
		body: '{"key":"p","currency":"USD","interval":"month","rateCards":[]}',
		ok: 201,
	},
	{ method: "GET", path: "/v1/plans", scopes: ["read"], ok: 200 },
	// Each case has a fresh tenant, without plan p or a subscription: 404 (or 400 naming the plan) is what an accepted key gets.
	{ method: "GET", path: "/v1/plans/p", scopes: ["read"], ok: 404 },
	{ method: "PUT", path: "/v1/customers/c/subscription", scopes: ["read"], body: '{"plan":"p"}', ok: 400 },
	{ method: "GET", path: "/v1/customers/c/subscription", scopes: ["read"], ok: 404 },
	{ method: "GET", path: "/v1/customers/c/invoice?period=current", scopes: ["read"], ok: 404 },
	{ method: "GET", path: "/v1/invoices?period=current", scopes: ["read"], ok: 200 },
];

function keyOf(tenant: TestTenant, scope: Scope): string {
	return scope === "write" ? tenant.writeKey : tenant.readKey;
}

/** Authorization headers that must never authenticate, built around a real key of the right scope. */
const GARBAGE: [string, (key: string) => Promise<string> | string][] = [
	["garbage", () => "Bearer not-a-key"],
	["an unknown well-formed key", (key) => `Bearer ${key.slice(0, 5)}${"A".repeat(32)}`],
	["the real prefix with a wrong secret", (key) => `Bearer ${key.slice(0, 13)}${"A".repeat(24)}`],
	["the public prefix alone", (key) => `Bearer ${key.slice(0, 13)}`],
	["the key with a character added", (key) => `Bearer ${key}A`],
	["the key without its last character", (key) => `Bearer ${key.slice(0, -1)}`],
	["the key upper-cased", (key) => `Bearer ${key.toUpperCase()}`],
	["the key's stored SHA-256 hash", async (key) => `Bearer ${await sha256Hex(key)}`],
	["the admin token", () => `Bearer ${ADMIN_TOKEN}`],
	["the key under the Basic scheme", (key) => `Basic ${btoa(`${key}:`)}`],
	["the key without a scheme", (key) => key],
	["an empty bearer", () => "Bearer "],
];

function tenantCall(route: TenantRoute, authorization?: string): Promise<Response> {
	const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
	return call(route.path, { method: route.method, body: route.body, headers });
}

describe("tenant routes", () => {
	it.each(TENANT_ROUTES.map((route) => [routeName(route), route] as const))("%s answers 401 without a key", async (_, route) => {
		await expectError(await tenantCall(route), 401, "unauthorized");
	});

	const garbageCases = TENANT_ROUTES.flatMap((route) =>
		GARBAGE.map(([label, build]) => [routeName(route), label, route, build] as const),
	);
	it.each(garbageCases)("%s answers 401 for %s", async (_, __, route, build) => {
		const tenant = await createTenant();
		await expectError(await tenantCall(route, await build(keyOf(tenant, route.scopes[0]!))), 401, "unauthorized");
	});

	const wrongScope = TENANT_ROUTES.flatMap((route) =>
		(["write", "read"] as const)
			.filter((scope) => !route.scopes.includes(scope))
			.map((scope) => [routeName(route), scope, route] as const),
	);
	it.each(wrongScope)("%s answers 403 for a %s key", async (_, scope, route) => {
		const tenant = await createTenant();
		await expectError(await tenantCall(route, `Bearer ${keyOf(tenant, scope)}`), 403, "forbidden");
	});

	const rightScope = TENANT_ROUTES.flatMap((route) => route.scopes.map((scope) => [routeName(route), scope, route] as const));
	it.each(rightScope)("%s accepts a %s key", async (_, scope, route) => {
		const tenant = await createTenant();
		expect((await tenantCall(route, `Bearer ${keyOf(tenant, scope)}`)).status).toBe(route.ok);
	});

	it("refuses a read key on POST /v1/events before anything is enqueued", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest('{"event":"a"}', tenant.readKey));
		await expectError(response, 403, "forbidden");
		expect(queue.calls).toEqual([]);
	});

	it("GET /v1/health needs no key, and ignores one", async () => {
		for (const authorization of [undefined, "Bearer not-a-key"]) {
			const response = await call("/v1/health", { headers: authorization ? { authorization } : {} });
			// Recent dead letters would make the status degraded; whatever it is, it is never 401.
			expect(response.status).toBe(200);
			expect(await response.json()).toEqual({ status: expect.stringMatching(/^(healthy|degraded)$/), checks: expect.any(Object) });
		}
	});
});

describe("compatible ingest routes", () => {
	const SEGMENT = ["/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/batch"];
	const POSTHOG = ["/batch/", "/capture/", "/e/", "/i/v0/e/"];
	const segmentBody = (path: string) =>
		path === "/v1/batch" ? { batch: [{ type: "track", event: "a", userId: "u" }] } : { event: "a", userId: "u" };
	const basic = (key: string) => ({ authorization: `Basic ${btoa(`${key}:`)}` });
	const segmentCall = (path: string, headers: Record<string, string>) =>
		call(path, { method: "POST", body: JSON.stringify(segmentBody(path)), headers });
	const posthogCall = (path: string, apiKey?: string) =>
		call(path, {
			method: "POST",
			body: JSON.stringify({ ...(apiKey === undefined ? {} : { api_key: apiKey }), batch: [{ event: "a", distinct_id: "u" }] }),
		});

	it.each(SEGMENT)("Segment %s: 401 without a key, 401 for garbage, 403 for a read key, 200 for the write key", async (path) => {
		const tenant = await createTenant();
		await expectError(await segmentCall(path, {}), 401, "unauthorized");
		await expectError(await segmentCall(path, basic("ml_w_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")), 401, "unauthorized");
		await expectError(await segmentCall(path, basic(`${tenant.writeKey.slice(0, 13)}${"A".repeat(24)}`)), 401, "unauthorized");
		await expectError(await segmentCall(path, basic(tenant.readKey)), 403, "forbidden");
		await expectError(await segmentCall(path, basic(ADMIN_TOKEN)), 401, "unauthorized");
		expect((await segmentCall(path, basic(tenant.writeKey))).status).toBe(200);
	});

	it.each(POSTHOG)("PostHog %s: 401 without a key, 401 for garbage, 403 for a read key, 200 for the write key", async (path) => {
		const tenant = await createTenant();
		await expectError(await posthogCall(path), 401, "unauthorized");
		await expectError(await posthogCall(path, "ml_w_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), 401, "unauthorized");
		await expectError(await posthogCall(path, tenant.writeKey.slice(0, 13)), 401, "unauthorized");
		await expectError(await posthogCall(path, tenant.readKey), 403, "forbidden");
		await expectError(await posthogCall(path, ADMIN_TOKEN), 401, "unauthorized");
		expect((await posthogCall(path, tenant.writeKey)).status).toBe(200);
	});
});
