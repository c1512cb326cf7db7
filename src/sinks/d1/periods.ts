// Closed billing months in D1.

/** Records a closed billing month; closing it again keeps the first time. */
export async function insertClosedPeriod(db: D1Database, tenant: string, period: string, now: string): Promise<string> {
	await db
		.prepare("INSERT INTO closed_periods (tenant, period, closed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
		.bind(tenant, period, now)
		.run();
	const row = await db
		.prepare("SELECT closed_at FROM closed_periods WHERE tenant = ?1 AND period = ?2")
		.bind(tenant, period)
		.first<{ closed_at: string }>();
	return row!.closed_at;
}

export async function closedPeriods(db: D1Database, tenant: string): Promise<{ period: string; closed_at: string }[]> {
	const { results } = await db
		.prepare("SELECT period, closed_at FROM closed_periods WHERE tenant = ?1 ORDER BY period")
		.bind(tenant)
		.all<{ period: string; closed_at: string }>();
	return results;
}
