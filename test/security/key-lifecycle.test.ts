// Issuing and revoking API keys: an issued key works for its scope, a bad request stores none; a
// revocation takes effect within the 60-second verification cache and no longer; and 503 (not 500)
// while D1 cannot be asked.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifyKey } from "../../src/http/auth";
import { ApiError } from "../../src/shared/errors";
import {
	ADMIN_TOKEN,
	call,
	createTenant,
	d1Outage,
	eventsRequest,
	fetchWith,
	ingest,
	postJson,
	RecordingQueue,
	uniqueTenantId,
} from "../helpers";
import { expectError, issueKey, revoke } from "./helpers";

afterEach(() => {
	vi.useRealTimers();
});

const KEY_CACHE_TTL_MS = 60_000;

describe("issuing keys", () => {
	it("issues a write key that ingests for its tenant, alongside the keys it already had", async () => {
		const tenant = await createTenant();
		const issued = await issueKey(tenant.id, "write");
		const { response, queue } = await ingest(eventsRequest('{"event":"a"}', issued.key));
		expect(response.status).toBe(202);
		expect(queue.messages.map((message) => message.tenant)).toEqual([tenant.id]);
		expect((await ingest(eventsRequest('{"event":"b"}', tenant.writeKey))).response.status).toBe(202);
	});

	it("issues a read key that reads its tenant's reports and cannot ingest", async () => {
		const tenant = await createTenant();
		const issued = await issueKey(tenant.id, "read");
		const response = await call("/v1/usage", { key: issued.key });
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({ tenant: tenant.id, items: [] });
		await expectError(await call("/v1/events", { method: "POST", key: issued.key, body: '{"event":"a"}' }), 403, "forbidden");
	});

	it("answers 404 for an unknown tenant and stores no key", async () => {
		const id = uniqueTenantId("ghost");
		await expectError(await postJson(`/v1/admin/tenants/${id}/keys`, { scope: "write" }, ADMIN_TOKEN), 404, "not_found");
		expect(await env.DB.prepare("SELECT count(*) AS n FROM api_keys WHERE tenant_id = ?1").bind(id).first()).toEqual({ n: 0 });
	});

	const SCOPE = [{ path: "scope", message: 'must be "write" or "read"' }];
	it.each([
		["an unknown scope", { scope: "admin" }, SCOPE],
		["an upper-case scope", { scope: "WRITE" }, SCOPE],
		["no scope", {}, SCOPE],
		["a null scope", { scope: null }, SCOPE],
		["a scope list", { scope: ["write", "read"] }, SCOPE],
		["a tenant field", { scope: "write", tenant: "other" }, [{ path: "tenant", message: "unknown field" }]],
		["a body that is an array", ["write"], [{ path: "body", message: "must be an object" }]],
	])("answers 400 for %s and stores no key", async (_, body, details) => {
		const tenant = await createTenant();
		await expectError(await postJson(`/v1/admin/tenants/${tenant.id}/keys`, body, ADMIN_TOKEN), 400, "invalid_request", details);
		expect(await env.DB.prepare("SELECT count(*) AS n FROM api_keys WHERE tenant_id = ?1").bind(tenant.id).first()).toEqual({ n: 2 });
	});
});

describe("revoking keys", () => {
	it("revokes by prefix once, then answers 404", async () => {
		const tenant = await createTenant();
		const issued = await issueKey(tenant.id, "write");
		const first = await revoke(issued.prefix);
		expect(first.status).toBe(200);
		expect(await first.json()).toEqual({ revoked: issued.prefix, effectiveWithinMs: 60_000 });
		const row = await env.DB.prepare("SELECT revoked_at FROM api_keys WHERE prefix = ?1")
			.bind(issued.prefix)
			.first<{ revoked_at: string }>();
		expect(row!.revoked_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
		await expectError(await revoke(issued.prefix), 404, "not_found");
	});

	it.each([
		["an unknown prefix", "ml_w_ZZZZZZZZ", 404, "not_found", undefined],
		[
			"a prefix of 12 characters",
			"ml_w_ZZZZZZZ",
			400,
			"invalid_request",
			[{ path: "prefix", message: "must be the key's first 13 characters" }],
		],
		[
			"a whole key",
			`ml_w_${"Z".repeat(32)}`,
			400,
			"invalid_request",
			[{ path: "prefix", message: "must be the key's first 13 characters" }],
		],
	])("answers %s with %i", async (_, prefix, status, code, details) => {
		await expectError(await revoke(prefix), status, code, details);
	});

	it("refuses a revoked key that was never verified at once, and enqueues nothing", async () => {
		const tenant = await createTenant();
		const [write, read] = [await issueKey(tenant.id, "write"), await issueKey(tenant.id, "read")];
		expect((await revoke(write.prefix)).status).toBe(200);
		expect((await revoke(read.prefix)).status).toBe(200);
		const { response, queue } = await ingest(eventsRequest('{"event":"a"}', write.key));
		await expectError(response, 401, "unauthorized");
		expect(queue.calls).toEqual([]);
		await expectError(await call("/v1/usage", { key: read.key }), 401, "unauthorized");
	});

	it("keeps the tenant's other keys working", async () => {
		const tenant = await createTenant();
		const issued = await issueKey(tenant.id, "read");
		expect((await revoke(tenant.readKey.slice(0, 13))).status).toBe(200);
		await expectError(await call("/v1/usage", { key: tenant.readKey }), 401, "unauthorized");
		expect((await call("/v1/usage", { key: issued.key })).status).toBe(200);
		expect((await call("/v1/flush", { method: "POST", key: tenant.writeKey })).status).toBe(200);
	});

	it("lets a key verified before its revocation work until 60 s after that verification, and no longer", async () => {
		const start = Date.now();
		vi.useFakeTimers({ toFake: ["Date"], now: start });
		const tenant = await createTenant();
		const issued = await issueKey(tenant.id, "read");
		expect((await call("/v1/usage", { key: issued.key })).status).toBe(200);
		expect((await revoke(issued.prefix)).status).toBe(200);

		// Verified at `start`: trusted from the isolate's cache until start + 60 s, and using it does not extend that.
		for (const at of [0, 30_000, KEY_CACHE_TTL_MS - 1]) {
			vi.setSystemTime(start + at);
			expect((await call("/v1/usage", { key: issued.key })).status).toBe(200);
		}
		vi.setSystemTime(start + KEY_CACHE_TTL_MS);
		await expectError(await call("/v1/usage", { key: issued.key }), 401, "unauthorized");
		vi.setSystemTime(start + KEY_CACHE_TTL_MS + 1);
		await expectError(await call("/v1/usage", { key: issued.key }), 401, "unauthorized");
	});

	it("lets a cached write key ingest until the 60 s are up, then refuses it with nothing enqueued", async () => {
		const start = Date.now();
		vi.useFakeTimers({ toFake: ["Date"], now: start });
		const tenant = await createTenant();
		const issued = await issueKey(tenant.id, "write");
		expect((await ingest(eventsRequest('{"event":"a"}', issued.key))).response.status).toBe(202);
		expect((await revoke(issued.prefix)).status).toBe(200);

		vi.setSystemTime(start + KEY_CACHE_TTL_MS - 1);
		const before = await ingest(eventsRequest('{"event":"b"}', issued.key));
		expect(before.response.status).toBe(202);
		expect(before.queue.messages.map((message) => message.tenant)).toEqual([tenant.id]);

		vi.setSystemTime(start + KEY_CACHE_TTL_MS);
		const after = await ingest(eventsRequest('{"event":"c"}', issued.key));
		await expectError(after.response, 401, "unauthorized");
		expect(after.queue.calls).toEqual([]);
	});

	it("keeps no refusal in the cache: a wrong secret under a real prefix never blocks the real key", async () => {
		const tenant = await createTenant();
		const issued = await issueKey(tenant.id, "read");
		const wrong = `${issued.prefix}${"A".repeat(24)}`;
		await expectError(await call("/v1/usage", { key: wrong }), 401, "unauthorized");
		expect((await call("/v1/usage", { key: issued.key })).status).toBe(200);
		await expectError(await call("/v1/usage", { key: wrong }), 401, "unauthorized");
	});
});

describe("key verification during a D1 outage", () => {
	it("answers 503 with Retry-After: 5 for a key it cannot look up, and verifies it once D1 is back", async () => {
		const tenant = await createTenant();
		const outage = d1Outage();
		const errors = vi.spyOn(console, "error").mockImplementation(() => {});

		const refused = await verifyKey({ ...env, DB: outage.db }, tenant.writeKey, ["write"]).catch((err: unknown) => err);
		expect(refused).toBeInstanceOf(ApiError);
		const { status, code, message, headers } = refused as ApiError;
		expect({ status, code, message, headers }).toEqual({
			status: 503,
			code: "unavailable",
			message: "Key verification is unavailable; retry shortly",
			headers: { "retry-after": "5" },
		});
		expect(errors).toHaveBeenCalledWith("key lookup failed", expect.objectContaining({ message: "D1 unavailable" }));

		// Through the Worker: the same 503 in the one error shape, and nothing enqueued.
		const queue = new RecordingQueue();
		const ctx = createExecutionContext();
		const response = await fetchWith(eventsRequest('{"event":"a"}', tenant.writeKey), queue, ctx, { DB: outage.db });
		await waitOnExecutionContext(ctx);
		expect({ status: response.status, retryAfter: response.headers.get("retry-after"), body: await response.json() }).toEqual({
			status: 503,
			retryAfter: "5",
			body: { error: { code: "unavailable", message: "Key verification is unavailable; retry shortly" } },
		});
		expect(queue.calls).toEqual([]);
		expect(outage.refused).toBe(2);

		outage.down = false;
		expect(await verifyKey({ ...env, DB: outage.db }, tenant.writeKey, ["write"])).toBe(tenant.id);
	});
});
