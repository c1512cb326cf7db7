// Dead letters in D1, kept for inspection and replay.

export interface DeadLetterRow {
	seq: number;
	id: string;
	tenant: string | null;
	body: string;
	error: string;
	attempts: number;
	first_failed_at: string;
	last_failed_at: string;
	replayed_at: string | null;
}

export type NewDeadLetter = Omit<DeadLetterRow, "seq" | "replayed_at">;

/** Stores dead letters; a message that dies again updates its row (and may be replayed again). */
export async function insertDeadLetters(db: D1Database, rows: NewDeadLetter[]): Promise<void> {
	const statement = db.prepare(
		`INSERT INTO dead_letters (id, tenant, body, error, attempts, first_failed_at, last_failed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
		 ON CONFLICT (id) DO UPDATE SET error = excluded.error, attempts = attempts + excluded.attempts,
		   last_failed_at = excluded.last_failed_at, replayed_at = NULL`,
	);
	await db.batch(
		rows.map((row) => statement.bind(row.id, row.tenant, row.body, row.error, row.attempts, row.first_failed_at, row.last_failed_at)),
	);
}

/** One page of dead letters after `afterSeq`, oldest first, optionally for one tenant. */
export async function listDeadLetters(db: D1Database, tenant: string | null, afterSeq: number, limit: number): Promise<DeadLetterRow[]> {
	const { results } = await db
		.prepare("SELECT * FROM dead_letters WHERE seq > ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY seq LIMIT ?3")
		.bind(afterSeq, tenant, limit)
		.all<DeadLetterRow>();
	return results;
}

export async function deadLettersByIds(db: D1Database, ids: string[]): Promise<DeadLetterRow[]> {
	const { results } = await db
		.prepare(`SELECT * FROM dead_letters WHERE id IN (${ids.map((_, i) => `?${i + 1}`).join(", ")}) ORDER BY seq`)
		.bind(...ids)
		.all<DeadLetterRow>();
	return results;
}

export async function unreplayedDeadLetters(db: D1Database, tenant: string, limit: number): Promise<DeadLetterRow[]> {
	const { results } = await db
		.prepare("SELECT * FROM dead_letters WHERE tenant = ?1 AND replayed_at IS NULL ORDER BY seq LIMIT ?2")
		.bind(tenant, limit)
		.all<DeadLetterRow>();
	return results;
}

export async function markReplayed(db: D1Database, ids: string[], now: string): Promise<void> {
	if (ids.length === 0) return;
	const statement = db.prepare("UPDATE dead_letters SET replayed_at = ?2 WHERE id = ?1");
	await db.batch(ids.map((id) => statement.bind(id, now)));
}

export async function deleteDeadLetter(db: D1Database, id: string): Promise<boolean> {
	const result = await db.prepare("DELETE FROM dead_letters WHERE id = ?1").bind(id).run();
	return result.meta.changes === 1;
}

export interface DeadLetterCounts {
	total: number;
	replayed: number;
}

/** The bounded count /v1/health runs: a search of the last_failed_at index, reading at most ?2 rows. */
export const RECENT_DEAD_LETTERS = "SELECT count(*) AS n FROM (SELECT 1 FROM dead_letters WHERE last_failed_at >= ?1 LIMIT ?2)";

/** Dead letters that failed since `since`, counted up to `cap` (`capped` when there are more). */
export async function recentDeadLetters(db: D1Database, since: string, cap: number): Promise<{ count: number; capped: boolean }> {
	const { n } = (await db
		.prepare(RECENT_DEAD_LETTERS)
		.bind(since, cap + 1)
		.first<{ n: number }>())!;
	return { count: Math.min(n, cap), capped: n > cap };
}

/** One tenant's dead-letter counts, through the (tenant, seq) index rather than the whole table. */
export async function deadLetterCounts(db: D1Database, tenant: string): Promise<DeadLetterCounts> {
	const row = await db
		.prepare("SELECT count(*) AS total, count(replayed_at) AS replayed FROM dead_letters WHERE tenant = ?1")
		.bind(tenant)
		.first<DeadLetterCounts>();
	return row!;
}
