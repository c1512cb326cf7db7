// Each tenant's allowed browser origins in D1 (no row: any origin).

/** The tenant's allowed origins, or null when it has set none. */
export async function findAllowedOrigins(db: D1Database, tenant: string): Promise<string[] | null> {
	const row = await db
		.prepare("SELECT allowed_origins FROM tenant_cors WHERE tenant = ?1")
		.bind(tenant)
		.first<{ allowed_origins: string }>();
	return row ? (JSON.parse(row.allowed_origins) as string[]) : null;
}

/** Sets the tenant's allowed origins; null removes the list, so any origin is allowed again. */
export async function putAllowedOrigins(db: D1Database, tenant: string, origins: readonly string[] | null, now: string): Promise<void> {
	if (origins === null) {
		await db.prepare("DELETE FROM tenant_cors WHERE tenant = ?1").bind(tenant).run();
		return;
	}
	await db
		.prepare(
			"INSERT INTO tenant_cors (tenant, allowed_origins, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (tenant) DO UPDATE SET allowed_origins = ?2, updated_at = ?3",
		)
		.bind(tenant, JSON.stringify(origins), now)
		.run();
}
