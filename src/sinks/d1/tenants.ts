// Tenants and their hashed API keys in D1.

export type Scope = "write" | "read";

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

export async function insertKey(db: D1Database, tenant: string, key: NewKey, now: string): Promise<boolean> {
	const result = await db
		.prepare(
			"INSERT INTO api_keys (key_hash, prefix, tenant_id, scope, created_at) SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?3)",
		)
		.bind(key.hash, key.prefix, tenant, key.scope, now)
		.run();
	return result.meta.changes === 1;
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

/** Creates a tenant and its keys in one transaction. Returns false if the id is taken. */
export async function insertTenant(db: D1Database, id: string, name: string, keys: NewKey[], now: string): Promise<boolean> {
	try {
		await db.batch([
			db.prepare("INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3)").bind(id, name, now),
			...keys.map((key) =>
				db
					.prepare("INSERT INTO api_keys (key_hash, prefix, tenant_id, scope, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
					.bind(key.hash, key.prefix, id, key.scope, now),
			),
		]);
		return true;
	} catch (err) {
		// The batch is one transaction, so a taken id leaves no key behind.
		if (String(err).includes("UNIQUE constraint failed: tenants.id")) return false;
		throw err;
	}
}

/** Up to `limit` tenant ids after `after` (every id sorts after ""), in id order. */
export async function listTenantIds(db: D1Database, after: string, limit: number): Promise<string[]> {
	const { results } = await db
		.prepare("SELECT id FROM tenants WHERE id > ?1 ORDER BY id LIMIT ?2")
		.bind(after, limit)
		.all<{ id: string }>();
	return results.map((row) => row.id);
}
