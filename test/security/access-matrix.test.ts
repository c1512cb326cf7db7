// Who may call what: every route against no key, garbage keys, the wrong scope, tenant keys on
// admin routes and an unset ADMIN_TOKEN; and one tenant's key never reaches another tenant's data.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { aggregator, d1Usage, EVENT_HOUR, freezeClock, makeEvent, pendingRowCount } from "../aggregator/fixtures";
import { metricsWith } from "../faults/fixtures";
import { ADMIN_TOKEN, call, createTenant, postJson, uniqueTenantId, type TestTenant } from "../helpers/api";
import { eventsRequest, ingest } from "../producer/helpers";
import { seedEvents, seedUsage } from "../reports/seed";
import { expectError, issueKey } from "./helpers";

afterEach(() => {
	vi.useRealTimers();
});

const BASE = "https://meterline.test";

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
];
const name = (route: { method: string; path: string }) => `${route.method} ${route.path}`;

function keyOf(tenant: TestTenant, scope: Scope): string {
	return scope === "write" ? tenant.writeKey : tenant.readKey;
}

async function sha256Hex(text: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
	return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
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
	it.each(TENANT_ROUTES.map((route) => [name(route), route] as const))("%s answers 401 without a key", async (_, route) => {
		await expectError(await tenantCall(route), 401, "unauthorized");
	});

	const garbageCases = TENANT_ROUTES.flatMap((route) => GARBAGE.map(([label, build]) => [name(route), label, route, build] as const));
	it.each(garbageCases)("%s answers 401 for %s", async (_, __, route, build) => {
		const tenant = await createTenant();
		await expectError(await tenantCall(route, await build(keyOf(tenant, route.scopes[0]!))), 401, "unauthorized");
	});

	const wrongScope = TENANT_ROUTES.flatMap((route) =>
		(["write", "read"] as const).filter((scope) => !route.scopes.includes(scope)).map((scope) => [name(route), scope, route] as const),
	);
	it.each(wrongScope)("%s answers 403 for a %s key", async (_, scope, route) => {
		const tenant = await createTenant();
		await expectError(await tenantCall(route, `Bearer ${keyOf(tenant, scope)}`), 403, "forbidden");
	});

	const rightScope = TENANT_ROUTES.flatMap((route) => route.scopes.map((scope) => [name(route), scope, route] as const));
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
			// Admin tests in this file leave dead letters behind, so the status may be degraded: never 401.
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

interface AdminRoute {
	method: string;
	path: string;
	/** A request the admin token gets `ok` for; built per test so it owns its data. */
	setup: () => Promise<{ path: string; body?: string }>;
	ok: number;
}

async function deadLetterRow(): Promise<string> {
	const id = `dl-${uniqueTenantId()}`;
	const now = new Date().toISOString();
	await env.DB.prepare(
		"INSERT INTO dead_letters (id, tenant, body, error, attempts, first_failed_at, last_failed_at) VALUES (?1, NULL, ?2, 'test', 1, ?3, ?3)",
	)
		.bind(id, '{"json":"poison"}', now)
		.run();
	return id;
}

const ADMIN_ROUTES: AdminRoute[] = [
	{
		method: "POST",
		path: "/v1/admin/tenants",
		setup: async () => ({ path: "/v1/admin/tenants", body: JSON.stringify({ id: uniqueTenantId() }) }),
		ok: 201,
	},
	{
		method: "POST",
		path: "/v1/admin/tenants/:id/keys",
		setup: async () => ({ path: `/v1/admin/tenants/${(await createTenant()).id}/keys`, body: '{"scope":"read"}' }),
		ok: 201,
	},
	{
		method: "DELETE",
		path: "/v1/admin/keys/:prefix",
		setup: async () => ({ path: `/v1/admin/keys/${(await issueKey((await createTenant()).id, "write")).prefix}` }),
		ok: 200,
	},
	{ method: "GET", path: "/v1/admin/metrics", setup: async () => ({ path: "/v1/admin/metrics" }), ok: 200 },
	{ method: "GET", path: "/v1/admin/dead-letters", setup: async () => ({ path: "/v1/admin/dead-letters" }), ok: 200 },
	{
		method: "POST",
		path: "/v1/admin/dead-letters/replay",
		setup: async () => ({ path: "/v1/admin/dead-letters/replay", body: JSON.stringify({ ids: [await deadLetterRow()] }) }),
		ok: 200,
	},
	{
		method: "DELETE",
		path: "/v1/admin/dead-letters/:id",
		setup: async () => ({ path: `/v1/admin/dead-letters/${await deadLetterRow()}` }),
		ok: 204,
	},
];

function adminCall(route: AdminRoute, target: { path: string; body?: string }, authorization?: string): Promise<Response> {
	return call(target.path, { method: route.method, body: target.body, headers: authorization === undefined ? {} : { authorization } });
}

describe("admin routes", () => {
	const callers: [string, (tenant: TestTenant) => string | undefined][] = [
		["no token", () => undefined],
		["garbage", () => "Bearer not-the-token"],
		["the token with a suffix", () => `Bearer ${ADMIN_TOKEN}x`],
		["the token without its last character", () => `Bearer ${ADMIN_TOKEN.slice(0, -1)}`],
		["the token under the Basic scheme", () => `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}`],
		["a tenant's write key", (tenant) => `Bearer ${tenant.writeKey}`],
		["a tenant's read key", (tenant) => `Bearer ${tenant.readKey}`],
	];
	const cases = ADMIN_ROUTES.flatMap((route) => callers.map(([label, auth]) => [name(route), label, route, auth] as const));

	it.each(cases)("%s answers 401 for %s", async (_, __, route, auth) => {
		const tenant = await createTenant();
		const target = await route.setup();
		await expectError(await adminCall(route, target, auth(tenant)), 401, "unauthorized");
	});

	it.each(ADMIN_ROUTES.map((route) => [name(route), route] as const))("%s answers the admin token", async (_, route) => {
		const response = await adminCall(route, await route.setup(), `Bearer ${ADMIN_TOKEN}`);
		expect(response.status).toBe(route.ok);
	});

	it("creates no tenant for a tenant key", async () => {
		const tenant = await createTenant();
		const id = uniqueTenantId();
		await expectError(await postJson("/v1/admin/tenants", { id }, tenant.writeKey), 401, "unauthorized");
		expect(await env.DB.prepare("SELECT id FROM tenants WHERE id = ?1").bind(id).first()).toBeNull();
	});

	it("revokes nothing for a tenant key", async () => {
		const tenant = await createTenant();
		const response = await call(`/v1/admin/keys/${tenant.readKey.slice(0, 13)}`, { method: "DELETE", key: tenant.readKey });
		await expectError(response, 401, "unauthorized");
		expect(await env.DB.prepare("SELECT revoked_at FROM api_keys WHERE prefix = ?1").bind(tenant.readKey.slice(0, 13)).first()).toEqual(
			{ revoked_at: null },
		);
		expect((await call("/v1/usage", { key: tenant.readKey })).status).toBe(200);
	});

	it("issues no key for a tenant's own key", async () => {
		const tenant = await createTenant();
		await expectError(await postJson(`/v1/admin/tenants/${tenant.id}/keys`, { scope: "write" }, tenant.writeKey), 401, "unauthorized");
		const { results } = await env.DB.prepare("SELECT scope FROM api_keys WHERE tenant_id = ?1 ORDER BY scope").bind(tenant.id).all();
		expect(results).toEqual([{ scope: "read" }, { scope: "write" }]);
	});
});

describe("admin routes while ADMIN_TOKEN is unset", () => {
	/** The Worker's own fetch with ADMIN_TOKEN replaced: the binding is a secret that may be missing. */
	async function fetchWithAdminToken(token: string | undefined, request: Request): Promise<Response> {
		const ctx = createExecutionContext();
		const response = await worker.fetch(
			request as Request<unknown, IncomingRequestCfProperties>,
			{ ...env, ADMIN_TOKEN: token } as Env,
			ctx,
		);
		await waitOnExecutionContext(ctx);
		return response;
	}

	const unset = [
		["undefined", undefined],
		["empty", ""],
	] as const;
	const presented = [`Bearer ${ADMIN_TOKEN}`, "Bearer undefined", "Bearer ", undefined];
	const cases = ADMIN_ROUTES.flatMap((route) => unset.map(([label, token]) => [name(route), label, route, token] as const));

	it.each(cases)("%s answers 401 to every token while ADMIN_TOKEN is %s", async (_, __, route, token) => {
		for (const authorization of presented) {
			const target = await route.setup();
			const headers: Record<string, string> = { "content-type": "application/json" };
			if (authorization !== undefined) headers.authorization = authorization;
			const request = new Request(BASE + target.path, { method: route.method, body: target.body, headers });
			await expectError(await fetchWithAdminToken(token, request), 401, "unauthorized");
		}
	});

	it("answers the same request 201 once ADMIN_TOKEN is set", async () => {
		const request = () =>
			new Request(`${BASE}/v1/admin/tenants`, {
				method: "POST",
				body: JSON.stringify({ id: uniqueTenantId() }),
				headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
			});
		await expectError(await fetchWithAdminToken(undefined, request()), 401, "unauthorized");
		expect((await fetchWithAdminToken(ADMIN_TOKEN, request())).status).toBe(201);
	});
});

describe("tenant isolation", () => {
	const HOUR = "2026-03-10T13:00:00.000Z";
	const MINUTE = "2026-03-10T13:59:00.000Z";
	const USAGE = "/v1/usage?from=2026-03-01&to=2026-04-01&granularity=month";
	const STATS = "/v1/stats?from=2026-03-10&to=2026-03-11&granularity=day";

	async function json<T>(path: string, key: string): Promise<{ status: number; body: T }> {
		const response = await call(path, { key });
		return { status: response.status, body: await response.json<T>() };
	}

	it("shows another tenant's usage to no one but its own read key", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		await seedUsage(a.id, [{ sku: "tokens", hour: HOUR, micros: "5000000", events: 2 }]);
		expect(await json(USAGE, b.readKey)).toEqual({
			status: 200,
			body: {
				tenant: b.id,
				from: "2026-03-01T00:00:00.000Z",
				to: "2026-04-01T00:00:00.000Z",
				granularity: "month",
				items: [],
				adjustments: [],
			},
		});
		const own = await json<{ tenant: string; items: unknown[] }>(USAGE, a.readKey);
		expect(own.body.tenant).toBe(a.id);
		expect(own.body.items).toEqual([
			{ sku: "tokens", unit: "unit", period: "2026-03-01T00:00:00.000Z", quantity: 5, quantityDecimal: "5", events: 2 },
		]);
	});

	it("shows another tenant's stats to no one but its own read key", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		await seedEvents(a.id, [{ event: "api_call", minute: MINUTE, count: 3 }]);
		expect(await json(STATS, b.readKey)).toEqual({
			status: 200,
			body: { tenant: b.id, from: "2026-03-10T00:00:00.000Z", to: "2026-03-11T00:00:00.000Z", granularity: "day", items: [] },
		});
		const own = await json<{ items: { event: string; count: number }[] }>(STATS, a.readKey);
		expect(own.body.items.map(({ event, count }) => ({ event, count }))).toEqual([{ event: "api_call", count: 3 }]);
	});

	it.each([USAGE, STATS])("answers 400 to %s naming another tenant in the query", async (path) => {
		const [a, b] = [await createTenant(), await createTenant()];
		await seedUsage(a.id, [{ sku: "tokens", hour: HOUR, micros: "1000000" }]);
		await expectError(await call(`${path}&tenant=${a.id}`, { key: b.readKey }), 400, "invalid_request", [
			{ path: "tenant", message: "unknown query parameter" },
		]);
		await expectError(await call(`/v1/usage?tenant=${a.id}`, { key: b.readKey }), 400, "invalid_request", [
			{ path: "tenant", message: "unknown query parameter" },
		]);
	});

	it("refuses a tenant field in an event or beside a batch, and enqueues nothing", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		const one = await ingest(eventsRequest(JSON.stringify({ event: "a", tenant: a.id }), b.writeKey));
		await expectError(one.response, 400, "invalid_request", [{ index: 0, path: "tenant", message: "unknown field" }]);
		expect(one.queue.calls).toEqual([]);
		const batch = await ingest(eventsRequest(JSON.stringify({ tenant: a.id, events: [{ event: "a" }] }), b.writeKey));
		await expectError(batch.response, 400, "invalid_request", [{ path: "tenant", message: "unknown field" }]);
		expect(batch.queue.calls).toEqual([]);
	});

	it("refuses a tenant named in the query of POST /v1/events and enqueues nothing", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		const request = eventsRequest('{"event":"a"}', b.writeKey);
		const { response, queue } = await ingest(new Request(`${request.url}?tenant=${a.id}`, request));
		await expectError(response, 400, "invalid_request", [{ path: "tenant", message: "unknown query parameter" }]);
		expect(queue.calls).toEqual([]);
	});

	it("never flushes another tenant's aggregator, whatever the query or body names", async () => {
		freezeClock();
		const [a, b] = [await createTenant(), await createTenant()];
		await aggregator(a.id).ingest(a.id, [makeEvent({ usage: { sku: "tokens", unit: "token", micros: 2_000_000 } })]);
		for (const key of [b.writeKey, b.readKey]) {
			await expectError(await call(`/v1/flush?tenant=${a.id}`, { method: "POST", key }), 400, "invalid_request", [
				{ path: "tenant", message: "unknown query parameter" },
			]);
			// The flush takes no body: a tenant named there is never read.
			const response = await call("/v1/flush", { method: "POST", key, body: JSON.stringify({ tenant: a.id }) });
			expect(response.status).toBe(200);
			expect(await response.json()).toEqual({ flushed: 0 });
		}
		expect(await runInDurableObject(aggregator(a.id), (_, state) => pendingRowCount(state))).toBe(2);
		expect(await d1Usage(a.id)).toEqual([]);

		const own = await call("/v1/flush", { method: "POST", key: a.readKey });
		expect(await own.json()).toEqual({ flushed: 2 });
		expect(await d1Usage(a.id)).toEqual([{ sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "2000000", events: 1 }]);
	});

	it("GET /v1/metrics shows only the caller's tenant", async () => {
		freezeClock();
		const [a, b] = [await createTenant(), await createTenant()];
		await aggregator(a.id).ingest(a.id, [makeEvent(), makeEvent()]);
		expect(await json(`/v1/metrics`, b.readKey)).toEqual({ status: 200, body: metricsWith(b) });
		await expectError(await call(`/v1/metrics?tenant=${a.id}`, { key: b.readKey }), 400, "invalid_request", [
			{ path: "tenant", message: "unknown query parameter" },
		]);
		const own = await json<{ tenant: string; consumed: number; aggregated: number }>("/v1/metrics", a.readKey);
		expect(own.body).toMatchObject({ tenant: a.id, consumed: 2, aggregated: 2 });
	});
});
