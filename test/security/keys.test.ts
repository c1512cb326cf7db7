// API keys: their format (scope prefix, 192 random bits, a public 13-character prefix, never
// reused), and their storage as hashes only, checked by a scan of every D1 table.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMIN_TOKEN, call, createTenant, postJson } from "../helpers";
import { issueKey, revoke, sha256Hex } from "./helpers";

afterEach(() => {
	vi.useRealTimers();
});

const KEY = /^ml_(w|r)_[A-Za-z0-9_-]{32}$/;

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
