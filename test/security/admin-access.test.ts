// Who may call the admin routes: only the admin token, never garbage, a near miss, the Basic
// scheme or a tenant's key (which creates, revokes and issues nothing); and no token at all while
// ADMIN_TOKEN is unset or empty.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { ADMIN_TOKEN, BASE, call, createTenant, postJson, uniqueTenantId, type TestTenant } from "../helpers";
import { expectError, issueKey, routeName } from "./helpers";

afterEach(() => {
	vi.useRealTimers();
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
	const cases = ADMIN_ROUTES.flatMap((route) => callers.map(([label, auth]) => [routeName(route), label, route, auth] as const));

	it.each(cases)("%s answers 401 for %s", async (_, __, route, auth) => {
		const tenant = await createTenant();
		const target = await route.setup();
		await expectError(await adminCall(route, target, auth(tenant)), 401, "unauthorized");
	});

	it.each(ADMIN_ROUTES.map((route) => [routeName(route), route] as const))("%s answers the admin token", async (_, route) => {
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
	const cases = ADMIN_ROUTES.flatMap((route) => unset.map(([label, token]) => [routeName(route), label, route, token] as const));

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
