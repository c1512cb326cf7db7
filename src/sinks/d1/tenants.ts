// Tenants and their hashed API keys in D1, and each tenant's test space.

export type Scope = "write" | "read";

/**
 * A tenant's test space is a tenant of its own, "<tenant>~test": its own aggregator, rollups,
 * meters, plans and invoices, so test traffic shares no row with live traffic. A tenant id can
 * never hold "~" (TENANT_ID), so no live tenant can collide with one.
 */
const TEST_SPACE_SUFFIX = "~test";

/** The id of this live tenant's test space. */
export function testSpaceOf(tenant: string): string {
	return tenant + TEST_SPACE_SUFFIX;
}

/** Whether this internal tenant id is a test space. */
export function isTestSpace(tenant: string): boolean {
	return tenant.endsWith(TEST_SPACE_SUFFIX);
}

export interface ApiKeyRow {
	key_hash: string;
	tenant_id: string;
	scope: Scope;
}

/** The live key with this public prefix; the caller compares hashes in constant time. */
export function findKeyByPrefix(db: D1Database, prefix: string): Promise<ApiKeyRow | null> {
	return db
		.prepare("SELECT key_hash, tenant_id, scope FROM api_keys WHERE prefix = ?1 AND revoked_at IS NULL")
		.bind(prefix)
		.first<ApiKeyRow>();
}

/**
 * Adds a key to a live tenant, or with `test` to its test space (created first if the tenant
 * predates test spaces). False if there is no such live tenant.
 */
export async function insertKey(db: D1Database, tenant: string, key: NewKey, now: string, test = false): Promise<boolean> {
	const owner = test ? testSpaceOf(tenant) : tenant;
	const insert = db
		.prepare(
			"INSERT INTO api_keys (key_hash, prefix, tenant_id, scope, created_at) SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?3)",
		)
		.bind(key.hash, key.prefix, owner, key.scope, now);
	if (!test) return (await insert.run()).meta.changes === 1;
	const results = await db.batch([insertTestSpace(db, tenant, now), insert]);
	return results[1]!.meta.changes === 1;
}

/** The test space's own tenants row (api_keys and tenant_cors reference tenants), if the live tenant exists. */
function insertTestSpace(db: D1Database, tenant: string, now: string): D1PreparedStatement {
	return db
		.prepare(
			"INSERT INTO tenants (id, name, created_at) SELECT ?2, name || ' (test)', ?3 FROM tenants WHERE id = ?1 ON CONFLICT (id) DO NOTHING",
		)
		.bind(tenant, testSpaceOf(tenant), now);
}

/** Revokes the live key with this prefix; false if there is none. */
export async function revokeKey(db: D1Database, prefix: string, now: string): Promise<boolean> {
	const result = await db.prepare("UPDATE api_keys SET revoked_at = ?2 WHERE prefix = ?1 AND revoked_at IS NULL").bind(prefix, now).run();
	return result.meta.changes === 1;
}

export interface NewKey {
	hash: string;
	prefix: string;
	scope: Scope;
}

/** Creates a tenant, its test space and their keys in one transaction. Returns false if the id is taken. */
export async function insertTenant(
	db: D1Database,
	id: string,
	name: string,
	keys: NewKey[],
	testKeys: NewKey[],
	now: string,
): Promise<boolean> {
	const insertKeys = (owner: string, list: NewKey[]) =>
		list.map((key) =>
			db
				.prepare("INSERT INTO api_keys (key_hash, prefix, tenant_id, scope, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
				.bind(key.hash, key.prefix, owner, key.scope, now),
		);
	try {
		await db.batch([
			db.prepare("INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)").bind(id, name, now),
			insertTestSpace(db, id, now),
			...insertKeys(id, keys),
			...insertKeys(testSpaceOf(id), testKeys),
		]);
		return true;
	} catch (err) {
		// The batch is one transaction, so a taken id leaves no key behind.
		if (String(err).includes("UNIQUE constraint failed: tenants.id")) return false;
		throw err;
	}
}

/** Up to `limit` live tenant ids after `after` (every id sorts after ""), in id order; test spaces are left out. */
export async function listTenantIds(db: D1Database, after: string, limit: number): Promise<string[]> {
	const { results } = await db
		.prepare("SELECT id FROM tenants WHERE id > ?1 AND instr(id, '~') = 0 ORDER BY id LIMIT ?2")
		.bind(after, limit)
		.all<{ id: string }>();
	return results.map((row) => row.id);
}

/**
 * The D1 tables of a tenant's data, each by its `tenant` column: what a test-data wipe deletes.
 * A wipe keeps the space's identity and settings: tenants, api_keys, tenant_cors and destinations
 * (TENANT_SETTINGS_TABLES). test/admin/test-data.test.ts checks both lists against the schema.
 */
export const TENANT_DATA_TABLES = [
	"usage_rollups",
	"usage_adjustments",
	"event_rollups",
	"event_rollups_hourly",
	"series_rollups",
	"meter_rollups",
	"flushes",
	"closed_periods",
	"plans",
	"subscriptions",
	"invoices",
	"rejections",
	"dead_letters",
	"forward_dead_letters",
	"producer_metrics",
] as const;

/** The tables with a `tenant` column a wipe keeps: the settings a test run should not have to redo. */
export const TENANT_SETTINGS_TABLES = ["tenant_cors", "destinations"] as const;

/** Deletes every data row of a test space in one transaction; rows deleted, by table. Refuses a live tenant. */
export async function wipeTestSpace(db: D1Database, space: string): Promise<Record<string, number>> {
	if (!isTestSpace(space)) throw new Error(`${space} is not a test space`);
	const results = await db.batch(TENANT_DATA_TABLES.map((table) => db.prepare(`DELETE FROM ${table} WHERE tenant = ?1`).bind(space)));
	return Object.fromEntries(TENANT_DATA_TABLES.map((table, i) => [table, results[i]!.meta.changes]));
}
