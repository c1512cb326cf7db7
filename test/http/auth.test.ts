// Keys and routing: who may call what, tenant creation, hashed key storage, 404/405.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
	ADMIN_TOKEN,
	call,
	createTenant,
	errorOf,
	eventsRequest,
	fetchWith,
	ingest,
	postJson,
	RecordingQueue,
	uniqueTenantId,
} from "../helpers";

const EVENT = '{"event":"a"}';
const KEY = /^ml_[wr]_[A-Za-z0-9_-]{32}$/;

async function sha256Hex(text: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
	return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function expectError(response: Response, status: number, code: string): Promise<void> {
	expect(response.status).toBe(status);
	const error = await errorOf(response);
	expect(error.code).toBe(code);
	expect(error.details).toBeUndefined();
}

describe("event keys", () => {
	it("answers 401 without a key", async () => {
		const { response, queue } = await ingest(eventsRequest(EVENT));
		await expectError(response, 401, "unauthorized");
		expect(queue.calls).toEqual([]);
	});

	it.each([
		["an unknown key", "Bearer ml_w_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
		["garbage", "Bearer not-a-key"],
		["an empty bearer", "Bearer "],
		["another scheme", "Basic dXNlcjpwYXNz"],
	])("answers 401 for %s", async (_, authorization) => {
		const request = eventsRequest(EVENT);
		request.headers.set("authorization", authorization);
		const { response, queue } = await ingest(request);
		await expectError(response, 401, "unauthorized");
		expect(queue.calls).toEqual([]);
	});

	it("answers 401 for a write key sent without the Bearer scheme", async () => {
		const tenant = await createTenant();
		const request = eventsRequest(EVENT);
		request.headers.set("authorization", tenant.writeKey);
		await expectError((await ingest(request)).response, 401, "unauthorized");
	});

	it("checks the key before reading the body", async () => {
		await expectError((await ingest(eventsRequest("{", undefined, "text/plain"))).response, 401, "unauthorized");
	});

	it("answers 403 for a read key on POST /v1/events", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(EVENT, tenant.readKey));
		await expectError(response, 403, "forbidden");
		expect(queue.calls).toEqual([]);
	});

	it.each(["/v1/usage", "/v1/stats"])("answers 403 for a write key on GET %s", async (path) => {
		const tenant = await createTenant();
		await expectError(await call(path, { key: tenant.writeKey }), 403, "forbidden");
	});

	it.each(["/v1/usage", "/v1/stats"])("answers 200 for a read key on GET %s", async (path) => {
		const tenant = await createTenant();
		const response = await call(path, { key: tenant.readKey });
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({ tenant: tenant.id, items: [] });
	});

	it.each(["writeKey", "readKey"] as const)("accepts the %s on POST /v1/flush", async (which) => {
		const tenant = await createTenant();
		expect((await call("/v1/flush", { method: "POST", key: tenant[which] })).status).toBe(200);
	});

	it("answers 401 on POST /v1/flush without a key", async () => {
		await expectError(await call("/v1/flush", { method: "POST" }), 401, "unauthorized");
	});
});

describe("tenant from the key", () => {
	it("rejects a tenant field in the event as unknown", async () => {
		const [tenant, other] = [await createTenant(), await createTenant()];
		const { response, queue } = await ingest(eventsRequest(JSON.stringify({ event: "a", tenant: other.id }), tenant.writeKey));
		expect(response.status).toBe(400);
		expect((await errorOf(response)).details).toEqual([{ index: 0, path: "tenant", message: "unknown field" }]);
		expect(queue.calls).toEqual([]);
	});

	it("enqueues events under the tenant of the key", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(
			eventsRequest(JSON.stringify({ events: [{ event: "a" }, { event: "b" }] }), tenant.writeKey),
		);
		expect(response.status).toBe(202);
		expect(queue.messages.map((message) => message.tenant)).toEqual([tenant.id]);
		expect(queue.messages[0]!.events.map((event) => event.event)).toEqual(["a", "b"]);
	});
});

describe("admin tenants", () => {
	it("answers 401 without an admin token", async () => {
		await expectError(await postJson("/v1/admin/tenants", { id: uniqueTenantId() }), 401, "unauthorized");
	});

	it.each([
		["a wrong token", "wrong"],
		["the token with a suffix", `${ADMIN_TOKEN}x`],
		["a prefix of the token", ADMIN_TOKEN.slice(0, -1)],
	])("answers 401 for %s", async (_, token) => {
		await expectError(await postJson("/v1/admin/tenants", { id: uniqueTenantId() }, token), 401, "unauthorized");
	});

	it("answers 401 for a tenant's write key", async () => {
		const tenant = await createTenant();
		await expectError(await postJson("/v1/admin/tenants", { id: uniqueTenantId() }, tenant.writeKey), 401, "unauthorized");
	});

	it("answers 401 for any token while ADMIN_TOKEN is unset", async () => {
		const request = new Request("https://meterline.test/v1/admin/tenants", {
			method: "POST",
			headers: { authorization: "Bearer undefined", "content-type": "application/json" },
			body: JSON.stringify({ id: uniqueTenantId() }),
		});
		const response = await fetchWith(request, new RecordingQueue(), createExecutionContext(), { ADMIN_TOKEN: undefined });
		await expectError(response, 401, "unauthorized");
	});

	it("creates a tenant with a write key and a read key", async () => {
		const id = uniqueTenantId();
		const response = await postJson("/v1/admin/tenants", { id, name: "Acme" }, ADMIN_TOKEN);
		expect(response.status).toBe(201);
		const body = await response.json<{ writeKey: string; readKey: string }>();
		expect(body).toEqual({
			tenant: { id, name: "Acme", createdAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/) },
			writeKey: expect.stringMatching(/^ml_w_/),
			readKey: expect.stringMatching(/^ml_r_/),
			testWriteKey: expect.stringMatching(/^ml_wt_[A-Za-z0-9_-]{32}$/),
			testReadKey: expect.stringMatching(/^ml_rt_[A-Za-z0-9_-]{32}$/),
		});
		expect(body.writeKey).toMatch(KEY);
		expect(body.readKey).toMatch(KEY);
		expect((await call("/v1/events", { method: "POST", key: body.writeKey, body: EVENT })).status).toBe(202);
		expect((await call("/v1/usage", { key: body.readKey })).status).toBe(200);
	});

	it("issues different keys to each tenant", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		expect(new Set([a.writeKey, a.readKey, b.writeKey, b.readKey]).size).toBe(4);
	});

	it("answers 409 for an existing tenant id and keeps its keys", async () => {
		const tenant = await createTenant();
		const response = await postJson("/v1/admin/tenants", { id: tenant.id, name: "Again" }, ADMIN_TOKEN);
		expect(response.status).toBe(409);
		const error = await errorOf(response);
		expect(error.code).toBe("conflict");
		const { results } = await env.DB.prepare("SELECT scope FROM api_keys WHERE tenant_id = ?1 ORDER BY scope").bind(tenant.id).all();
		expect(results).toEqual([{ scope: "read" }, { scope: "write" }]);
		expect((await call("/v1/events", { method: "POST", key: tenant.writeKey, body: EVENT })).status).toBe(202);
	});

	it("stores keys only as SHA-256 hashes", async () => {
		const tenant = await createTenant();
		const tenants = await env.DB.prepare("SELECT * FROM tenants").all();
		const keys = await env.DB.prepare("SELECT * FROM api_keys").all();
		const stored = JSON.stringify([tenants.results, keys.results]);
		for (const key of [tenant.writeKey, tenant.readKey]) {
			expect(stored).not.toContain(key);
			// The first 13 characters are kept in clear as the key's public handle; the rest never is.
			expect(stored).not.toContain(key.slice(13));
		}
		const own = keys.results
			.filter((row) => row.tenant_id === tenant.id)
			.sort((a, b) => String(a.scope).localeCompare(String(b.scope)));
		expect(own).toEqual([
			{
				key_hash: await sha256Hex(tenant.readKey),
				prefix: tenant.readKey.slice(0, 13),
				tenant_id: tenant.id,
				scope: "read",
				created_at: expect.any(String),
				revoked_at: null,
			},
			{
				key_hash: await sha256Hex(tenant.writeKey),
				prefix: tenant.writeKey.slice(0, 13),
				tenant_id: tenant.id,
				scope: "write",
				created_at: expect.any(String),
				revoked_at: null,
			},
		]);
	});
});

describe("routing", () => {
	it("answers 404 for an unknown path", async () => {
		await expectError(await call("/v1/nope"), 404, "not_found");
	});

	it.each([
		["GET", "/v1/events", "POST"],
		["PUT", "/v1/events", "POST"],
		["DELETE", "/v1/events", "POST"],
		["GET", "/v1/admin/tenants", "POST"],
		["GET", "/v1/flush", "POST"],
		["POST", "/v1/usage", "GET"],
		["POST", "/v1/stats", "GET"],
	])("answers 405 with Allow for %s %s", async (method, path, allow) => {
		const response = await call(path, { method });
		expect(response.headers.get("allow")).toBe(allow);
		await expectError(response, 405, "method_not_allowed");
	});

	it.each([
		["OPTIONS", "/v1/events", 405],
		["PATCH", "/v1/events", 405],
		["HEAD", "/v1/events", 405],
		["GET", "/", 404],
		["GET", "/%", 404],
		["GET", "/v1/%E0%A4%A", 404],
		["POST", "/v1/events/%ZZ", 404],
		["POST", "//v1/events", 404],
		["POST", "/V1/EVENTS", 404],
		["POST", "/v1/events/extra", 404],
	])("answers %s %s with %i, never a 5xx", async (method, path, status) => {
		const tenant = await createTenant();
		const response = await call(path, { method, key: tenant.writeKey });
		expect(response.status).toBe(status);
	});
});
