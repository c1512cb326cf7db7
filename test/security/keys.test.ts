// API keys: their format, storage as hashes only (a scan of every D1 table), issue, revocation,
// the 60-second verification cache that bounds when a revocation takes effect, and 503 (not 500)
// while D1 cannot be asked.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verifyKey } from "../../src/http/auth";
import { ApiError } from "../../src/shared/errors";
import { ADMIN_TOKEN, call, createTenant, postJson, uniqueTenantId } from "../helpers/api";
import { d1Outage } from "../helpers/d1";
import { RecordingQueue } from "../helpers/queues";
import { eventsRequest, fetchWith, ingest } from "../producer/helpers";
import { expectError, issueKey, revoke } from "./helpers";

afterEach(() => {
	vi.useRealTimers();
});

const KEY = /^ml_(w|r)_[A-Za-z0-9_-]{32}$/;
const KEY_CACHE_TTL_MS = 60_000;

async function sha256Hex(text: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
	return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The random payload of a key (after `ml_w_`/`ml_r_`), decoded from base64url. */
function payloadBytes(key: string): Uint8Array {
	const base64 = key.slice(5).replace(/-/g, "+").replace(/_/g, "/");
	return Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
}

interface StoredText {
	table: string;
	column: string;
	value: string;
}

/** Every text value in every table of the D1 database, found through sqlite_master. */
async function everyStoredText(): Promise<{ tables: string[]; values: StoredText[] }> {
	const { results: tables } = await env.DB.prepare(
		"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name",
	).all<{ name: string }>();
	const values: StoredText[] = [];
	for (const { name } of tables) {
		const { results } = await env.DB.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
		for (const row of results) {
			for (const [column, value] of Object.entries(row)) if (typeof value === "string") values.push({ table: name, column, value });
		}
	}
	return { tables: tables.map((table) => table.name), values };
}

describe("key format", () => {
	it("issues scope-prefixed keys with 192 random bits in base64url", async () => {
		const tenant = await createTenant();
		const issued = [await issueKey(tenant.id, "write"), await issueKey(tenant.id, "read")];
		for (const [key, scope] of [
			[tenant.writeKey, "w"],
			[tenant.readKey, "r"],
			[issued[0]!.key, "w"],
			[issued[1]!.key, "r"],
		] as const) {
			expect(key).toMatch(KEY);
			expect(KEY.exec(key)![1]).toBe(scope);
			expect(key.slice(5)).toHaveLength(32);
			expect(payloadBytes(key).byteLength * 8).toBe(192);
		}
	});

	it("answers the issue with the tenant, scope, key and its 13-character public prefix", async () => {
		const tenant = await createTenant();
		const response = await postJson(`/v1/admin/tenants/${tenant.id}/keys`, { scope: "write" }, ADMIN_TOKEN);
		expect(response.status).toBe(201);
		const body = await response.json<{ key: string }>();
		expect(body).toEqual({ tenant: tenant.id, scope: "write", prefix: body.key.slice(0, 13), key: expect.stringMatching(KEY) });
		expect(body.key.startsWith("ml_w_")).toBe(true);
	});

	it("never issues the same key or prefix twice", async () => {
		const tenant = await createTenant();
		const keys = await Promise.all(Array.from({ length: 20 }, (_, i) => issueKey(tenant.id, i % 2 === 0 ? "write" : "read")));
		expect(new Set(keys.map((issued) => issued.key)).size).toBe(20);
		expect(new Set(keys.map((issued) => issued.prefix)).size).toBe(20);
	});
});

describe("key storage", () => {
	it("keeps no raw key, nor its secret part, in any column of any D1 table", async () => {
		const tenant = await createTenant();
		const [write, read] = [await issueKey(tenant.id, "write"), await issueKey(tenant.id, "read")];
		const revoked = await issueKey(tenant.id, "read");
		expect((await revoke(revoked.prefix)).status).toBe(200);
		// Put traffic through the pipeline with the keys, so the tables that record it hold rows too.
		expect(
			(
				await call("/v1/events?ack=durable", {
					method: "POST",
					key: write.key,
					body: '{"event":"a","usage":{"sku":"s","quantity":1}}',
				})
			).status,
		).toBe(202);
		expect((await call("/v1/events?ack=durable", { method: "POST", key: tenant.writeKey, body: '{"event":"b"}' })).status).toBe(202);
		expect((await call("/v1/flush", { method: "POST", key: read.key })).status).toBe(200);
		expect((await call("/v1/usage", { key: tenant.readKey })).status).toBe(200);
		const keys = [tenant.writeKey, tenant.readKey, write.key, read.key, revoked.key];

		const { tables, values } = await everyStoredText();
		expect(tables).toEqual(
			expect.arrayContaining([
				"api_keys",
				"tenants",
				"usage_rollups",
				"event_rollups",
				"flushes",
				"dead_letters",
				"producer_metrics",
			]),
		);
		for (const key of keys) {
			const leaks = values.filter(({ value }) => value.includes(key) || value.includes(key.slice(13)));
			expect(leaks).toEqual([]);
			// The scan does read api_keys: it finds each key's public prefix and hash, and nothing more.
			const hash = await sha256Hex(key);
			expect(values.filter(({ value }) => value === key.slice(0, 13))).toEqual([
				{ table: "api_keys", column: "prefix", value: key.slice(0, 13) },
			]);
			expect(values.filter(({ value }) => value === hash)).toEqual([{ table: "api_keys", column: "key_hash", value: hash }]);
		}
	});

	it("stores an issued key as its hash, prefix, tenant and scope", async () => {
		const tenant = await createTenant();
		const issued = await issueKey(tenant.id, "read");
		const row = await env.DB.prepare("SELECT key_hash, prefix, tenant_id, scope, revoked_at FROM api_keys WHERE prefix = ?1")
			.bind(issued.prefix)
			.first();
		expect(row).toEqual({
			key_hash: await sha256Hex(issued.key),
			prefix: issued.prefix,
			tenant_id: tenant.id,
			scope: "read",
			revoked_at: null,
		});
	});
});

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
