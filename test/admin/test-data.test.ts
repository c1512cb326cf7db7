// DELETE /v1/test-data: wipes every D1 row of the caller's test space (and flushes its aggregator
// first), keeps the test keys, never touches the live tenant, and is refused to write keys.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { TENANT_DATA_TABLES, TENANT_SETTINGS_TABLES, wipeTestSpace } from "../../src/sinks/d1/tenants";
import { ADMIN_TOKEN, call, getJson, uniqueTenantId } from "../helpers";
import { ingestDirect } from "../read/meter-helpers";
import { expectError } from "../security/helpers";
import { createTenantWithTestSpace } from "../security/test-space";

interface Column {
	name: string;
	type: string;
	pk: number;
}

async function columnsOf(table: string): Promise<Column[]> {
	const { results } = await env.DB.prepare("SELECT name, type, pk FROM pragma_table_info(?1)").bind(table).all<Column>();
	return results;
}

/** Every table of the schema, but D1's and SQLite's own. */
async function allTables(): Promise<string[]> {
	const { results } = await env.DB.prepare(
		"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations' ORDER BY name",
	).all<{ name: string }>();
	return results.map((row) => row.name);
}

/** One row for `tenant` in each table with a tenant column, every column filled (values the CHECK constraints accept). */
async function seedEveryTable(tenant: string): Promise<void> {
	for (const table of [...TENANT_DATA_TABLES, ...TENANT_SETTINGS_TABLES]) {
		const columns = (await columnsOf(table)).filter((column) => !(column.pk === 1 && column.type === "INTEGER"));
		const values = columns.map(({ name, type }) => {
			if (name === "tenant") return tenant;
			if (name === "source") return "segment";
			if (name === "grain") return "minute";
			return type === "TEXT" ? `${tenant}:${name}` : 1;
		});
		await env.DB.prepare(
			`INSERT INTO ${table} (${columns.map((c) => c.name).join(", ")}) VALUES (${columns.map((_, i) => `?${i + 1}`).join(", ")})`,
		)
			.bind(...values)
			.run();
	}
}

/** Rows per table with a tenant column, for one tenant id. */
async function rowCounts(tenant: string, tables: readonly string[] = TENANT_DATA_TABLES): Promise<Record<string, number>> {
	const counts: Record<string, number> = {};
	for (const table of tables) {
		const row = await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE tenant = ?1`).bind(tenant).first<{ n: number }>();
		counts[table] = row!.n;
	}
	return counts;
}

const each = (n: number) => Object.fromEntries(TENANT_DATA_TABLES.map((table) => [table, n]));
const wipe = (key?: string, query = "") => call(`/v1/test-data${query}`, { method: "DELETE", key });

describe("the tables a wipe covers", () => {
	it("are, with the settings it keeps, exactly the tables with a tenant column, besides tenants and api_keys", async () => {
		const withTenant: string[] = [];
		for (const table of await allTables()) {
			const names = (await columnsOf(table)).map((column) => column.name);
			if (names.includes("tenant")) withTenant.push(table);
			else expect([table, names.some((name) => name.includes("tenant"))]).toEqual([table, table === "api_keys"]);
		}
		expect(withTenant.sort()).toEqual([...TENANT_DATA_TABLES, ...TENANT_SETTINGS_TABLES].sort());
	});
});

describe("DELETE /v1/test-data", () => {
	it("wipes every data row of the test space with the test read key, and none of the live tenant's", async () => {
		const { live, test } = await createTenantWithTestSpace();
		await seedEveryTable(live.id);
		await seedEveryTable(test.id);

		const response = await wipe(test.readKey);
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tenant: test.id, wiped: { aggregator: true, tables: each(1), archiveParts: 0 } });
		expect(await rowCounts(test.id)).toEqual(each(0));
		expect(await rowCounts(live.id)).toEqual(each(1));
		// Settings stay, in both spaces.
		const settings = Object.fromEntries(TENANT_SETTINGS_TABLES.map((table) => [table, 1]));
		expect([await rowCounts(test.id, TENANT_SETTINGS_TABLES), await rowCounts(live.id, TENANT_SETTINGS_TABLES)]).toEqual([
			settings,
			settings,
		]);
	});

	it("wipes the test space, not the live one, when called with the live read key", async () => {
		const { live, test } = await createTenantWithTestSpace();
		await seedEveryTable(live.id);
		await seedEveryTable(test.id);

		const response = await wipe(live.readKey);
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ tenant: test.id, wiped: { aggregator: true, tables: each(1), archiveParts: 0 } });
		expect(await rowCounts(test.id)).toEqual(each(0));
		expect(await rowCounts(live.id)).toEqual(each(1));
	});

	it("keeps the test space's keys: they work after the wipe, and a second wipe finds nothing", async () => {
		const { live, test } = await createTenantWithTestSpace();
		await seedEveryTable(test.id);
		expect((await wipe(test.readKey)).status).toBe(200);

		const { results } = await env.DB.prepare(
			"SELECT tenant_id, scope FROM api_keys WHERE tenant_id IN (?1, ?2) ORDER BY tenant_id, scope",
		)
			.bind(live.id, test.id)
			.all();
		expect(results).toEqual([
			{ tenant_id: live.id, scope: "read" },
			{ tenant_id: live.id, scope: "write" },
			{ tenant_id: test.id, scope: "read" },
			{ tenant_id: test.id, scope: "write" },
		]);
		expect(await (await wipe(test.readKey)).json()).toEqual({
			tenant: test.id,
			wiped: { aggregator: true, tables: each(0), archiveParts: 0 },
		});
		expect((await call("/v1/events", { method: "POST", key: test.writeKey, body: '{"event":"a"}' })).status).toBe(202);
	});

	it("wipes the test space's aggregator first, so usage it still held never lands, and its ids are forgotten", async () => {
		const { live, test } = await createTenantWithTestSpace();
		const now = Date.now();
		const event = { event: "metered", timestamp: now, usage: { sku: "calls", quantity: 2 } };
		expect(await ingestDirect(test, [{ id: "held-1", ...event }])).toBe(1);
		expect(await ingestDirect(live, [{ id: "held-1", ...event }])).toBe(1);
		expect((await rowCounts(test.id)).usage_rollups).toBe(0);

		const response = await wipe(test.readKey);
		expect(response.status).toBe(200);
		const body = await response.json<{ wiped: { tables: Record<string, number> } }>();
		// The held delta was dropped with the aggregator's storage: D1 never had it.
		expect([body.wiped.tables.usage_rollups, body.wiped.tables.flushes]).toEqual([0, 0]);
		expect(await rowCounts(test.id)).toEqual(each(0));

		const day = new Date(now).toISOString().slice(0, 10);
		const next = new Date(now + 86_400_000).toISOString().slice(0, 10);
		const query = `/v1/usage?from=${day}&to=${next}&granularity=day`;
		expect((await getJson<{ items: unknown[] }>(query, test.readKey)).items).toEqual([]);
		// The wiped aggregator forgot the id: the same event counts again in the test space.
		expect(await ingestDirect(test, [{ id: "held-1", ...event }])).toBe(1);
		// The live tenant's usage is still held by its own aggregator, untouched.
		expect((await getJson<{ items: unknown[] }>(query, live.readKey)).items).toEqual([
			{ sku: "calls", unit: "unit", period: `${day}T00:00:00.000Z`, quantity: 2, quantityDecimal: "2", events: 1 },
		]);
	});

	it("answers 403 to write keys, 401 without a tenant key, and 400 for a query parameter, wiping nothing", async () => {
		const { live, test } = await createTenantWithTestSpace();
		await seedEveryTable(test.id);
		await expectError(await wipe(test.writeKey), 403, "forbidden");
		await expectError(await wipe(live.writeKey), 403, "forbidden");
		await expectError(await wipe(), 401, "unauthorized");
		await expectError(await wipe(ADMIN_TOKEN), 401, "unauthorized");
		await expectError(await wipe(test.readKey, "?tenant=other"), 400, "invalid_request", [
			{ path: "tenant", message: "unknown query parameter" },
		]);
		expect(await rowCounts(test.id)).toEqual(each(1));
	});

	it("deletes the test space's archive parts in R2, and none of the live tenant's", async () => {
		const { live, test } = await createTenantWithTestSpace();
		const keys = [
			`tenant=${test.id}/date=2100-03-10/a-000000000001.parquet`,
			`tenant=${test.id}/date=2100-03-11/a-000000000002.parquet`,
		];
		const liveKey = `tenant=${live.id}/date=2100-03-10/a-000000000001.parquet`;
		for (const key of [...keys, liveKey]) await env.ARCHIVE.put(key, "parquet");

		const body = await (await wipe(test.readKey)).json<{ wiped: { archiveParts: number } }>();
		expect(body.wiped.archiveParts).toBe(2);
		expect((await env.ARCHIVE.list({ prefix: `tenant=${test.id}/` })).objects).toEqual([]);
		expect((await env.ARCHIVE.list({ prefix: `tenant=${live.id}/` })).objects.map((o) => o.key)).toEqual([liveKey]);
	});

	it("answers 405 with Allow: DELETE for any other method", async () => {
		const { test } = await createTenantWithTestSpace();
		const response = await call("/v1/test-data", { method: "POST", key: test.readKey });
		await expectError(response, 405, "method_not_allowed");
		expect(response.headers.get("allow")).toBe("DELETE");
	});
});

describe("wipeTestSpace", () => {
	it("refuses a live tenant id and deletes nothing", async () => {
		const id = uniqueTenantId();
		await env.DB.prepare("INSERT INTO tenants (id, name, created_at) VALUES (?1, ?1, '2026-01-01T00:00:00.000Z')").bind(id).run();
		await seedEveryTable(id);
		await expect(wipeTestSpace(env.DB, id)).rejects.toThrow(`${id} is not a test space`);
		expect(await rowCounts(id)).toEqual(each(1));
	});
});
