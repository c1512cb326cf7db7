// Every D1 statement in one place: prepared, with numbered binds and typed results.
import { EVENT_ROLLUP, onConflictMerge, selectList, sqlColumns, sqlValues, type RollupRow, type RollupSpec } from "../rollups.js";

/** D1 binds at most 100 parameters per statement. */
const MAX_BINDS = 100;

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
		.prepare("INSERT INTO api_keys (key_hash, prefix, tenant_id, scope, created_at) SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?3)")
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

export interface FlushBatch {
	flushId: string;
	rows: Map<RollupSpec, RollupRow[]>;
	/** Filled in by applyFlush: D1's own count of rows written (meta.rows_written). */
	stats?: { rowsWritten: number };
}

/**
 * Writes one flush to D1 in a single transaction, guarded by the (tenant, flush_id) row: a
 * flush that was already applied (a crash before the local clear, a second alarm) adds nothing.
 * The same transaction deletes the tenant's older ledger rows: a flush id can only be resent
 * while its batch is still sealed in the aggregator, and a batch is sealed only after the one
 * before it was cleared, so only the newest row can ever be needed. Returns whether this call
 * applied the flush.
 */
export async function applyFlush(db: D1Database, tenant: string, batch: FlushBatch, now: string): Promise<boolean> {
	const statements: D1PreparedStatement[] = [];
	let rowCount = 0;
	for (const [spec, rows] of batch.rows) {
		rowCount += rows.length;
		statements.push(...rollupStatements(db, spec, tenant, batch.flushId, rows));
	}
	// Last, so every guard above still sees the flush as new within this transaction.
	statements.push(
		db
			.prepare("INSERT INTO flushes (tenant, flush_id, rows, flushed_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")
			.bind(tenant, batch.flushId, rowCount, now),
		db.prepare("DELETE FROM flushes WHERE tenant = ?1 AND flush_id <> ?2").bind(tenant, batch.flushId),
	);
	const results = await db.batch(statements);
	if (batch.stats) batch.stats.rowsWritten = results.reduce((rows, result) => rows + (result.meta.rows_written ?? 0), 0);
	return results[results.length - 2]!.meta.changes === 1;
}

function rollupStatements(db: D1Database, spec: RollupSpec, tenant: string, flushId: string, rows: RollupRow[]): D1PreparedStatement[] {
	const columns = sqlColumns(spec);
	const perStatement = Math.floor((MAX_BINDS - 2) / columns.length);
	// Exact parts are bound as JavaScript numbers (both below 2^53); the cast keeps them integers.
	const select = columns.map((column, i) => (/_(hi|lo)$/.test(column) ? `CAST(column${i + 1} AS INTEGER)` : `column${i + 1}`)).join(", ");
	const statements: D1PreparedStatement[] = [];
	for (let start = 0; start < rows.length; start += perStatement) {
		const chunk = rows.slice(start, start + perStatement);
		const binds: (string | number | null)[] = [tenant, flushId];
		const tuples = chunk.map((row) => {
			const placeholders = sqlValues(spec, row).map((value) => {
				binds.push(value);
				return `?${binds.length}`;
			});
			return `(${placeholders.join(", ")})`;
		});
		const sql =
			`INSERT INTO ${spec.table} (tenant, ${columns.join(", ")}) ` +
			`SELECT ?1, ${select} FROM (VALUES ${tuples.join(", ")}) ` +
			`WHERE NOT EXISTS (SELECT 1 FROM flushes WHERE tenant = ?1 AND flush_id = ?2) ` +
			onConflictMerge(spec, ["tenant", ...spec.keys]);
		statements.push(db.prepare(sql).bind(...binds));
	}
	return statements;
}

/** The flush ids D1's ledger holds for a tenant (the newest one, once pruning has run). */
export function ledgerStatement(db: D1Database, tenant: string): D1PreparedStatement {
	return db.prepare("SELECT flush_id FROM flushes WHERE tenant = ?1").bind(tenant);
}

/** How many characters of an ISO timestamp name each report bucket. */
export const BUCKET_PREFIX = { minute: 16, hour: 13, day: 10, month: 7 } as const;
export type Granularity = keyof typeof BUCKET_PREFIX;

/**
 * One report over a rollup: its rows in [from, to) summed per bucket (`bucket` is the ISO prefix
 * of the granularity) and per remaining key. With `compacted`, rows folded into the coarser
 * table count too; the two never hold the same data, since folding moves rows in one transaction.
 */
export function rollupReport(db: D1Database, spec: RollupSpec, tenant: string, from: string, to: string, granularity: Granularity, compacted = true): D1PreparedStatement {
	const keys = spec.keys.filter((key) => key !== spec.time);
	const stored = sqlColumns(spec).filter((column) => column !== spec.time);
	const source = (table: string, time: string) => `SELECT ${time} AS t, ${stored.join(", ")} FROM ${table} WHERE tenant = ?1 AND ${time} >= ?2 AND ${time} < ?3`;
	const sources = [source(spec.table, spec.time)];
	if (compacted && spec.compacted) sources.push(source(spec.compacted.table, spec.compacted.time));
	const groups = ["bucket", ...keys].join(", ");
	return db
		.prepare(`SELECT substr(t, 1, ?4) AS bucket, ${selectList(spec, true)} FROM (${sources.join(" UNION ALL ")}) GROUP BY ${groups} ORDER BY ${groups}`)
		.bind(tenant, from, to, BUCKET_PREFIX[granularity]);
}

/**
 * Folds a tenant's event rollups for minutes before `before` into hours, in one transaction, so
 * rows move and never exist in both tables. Running it again finds nothing to move.
 */
export async function compactEventMinutes(db: D1Database, tenant: string, before: string): Promise<number> {
	const spec = EVENT_ROLLUP;
	const compacted = spec.compacted!;
	const measures = Object.keys(spec.measures);
	const [insert, remove] = await db.batch([
		db
			.prepare(
				`INSERT INTO ${compacted.table} (tenant, event, ${compacted.time}, ${measures.join(", ")})
				 SELECT tenant, event, substr(minute, 1, 13) || ':00:00.000Z', ${selectList(spec, true).replace(/^event, /, "")}
				 FROM ${spec.table} WHERE tenant = ?1 AND minute < ?2 GROUP BY event, substr(minute, 1, 13)
				 ${onConflictMerge(spec, ["tenant", "event", compacted.time])}`,
			)
			.bind(tenant, before),
		db.prepare(`DELETE FROM ${spec.table} WHERE tenant = ?1 AND minute < ?2`).bind(tenant, before),
	]);
	return (insert!.meta.rows_written ?? 0) + (remove!.meta.rows_written ?? 0);
}

/** Records a closed billing month; closing it again keeps the first time. */
export async function insertClosedPeriod(db: D1Database, tenant: string, period: string, now: string): Promise<string> {
	await db.prepare("INSERT INTO closed_periods (tenant, period, closed_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING").bind(tenant, period, now).run();
	const row = await db.prepare("SELECT closed_at FROM closed_periods WHERE tenant = ?1 AND period = ?2").bind(tenant, period).first<{ closed_at: string }>();
	return row!.closed_at;
}

export async function closedPeriods(db: D1Database, tenant: string): Promise<{ period: string; closed_at: string }[]> {
	const { results } = await db.prepare("SELECT period, closed_at FROM closed_periods WHERE tenant = ?1 ORDER BY period").bind(tenant).all<{ period: string; closed_at: string }>();
	return results;
}

export type ProducerCounter = "received" | "enqueued" | "enqueue_failures" | "lost" | "rejected" | "capped" | OperationCounter;
/** Pipeline-wide operation counts, kept under the tenant PIPELINE_WIDE for the benchmark. */
export type OperationCounter = "http_requests" | "queue_messages" | "queue_send_calls" | "consumer_batches";
export const PIPELINE_WIDE = "*";

/** Adds one isolate's counter deltas; one statement per (tenant, counter). */
export async function addProducerMetrics(db: D1Database, deltas: { tenant: string; name: ProducerCounter; value: number }[]): Promise<void> {
	if (deltas.length === 0) return;
	const statement = db.prepare(
		"INSERT INTO producer_metrics (tenant, name, value) VALUES (?1, ?2, ?3) ON CONFLICT (tenant, name) DO UPDATE SET value = value + excluded.value",
	);
	await db.batch(deltas.map((delta) => statement.bind(delta.tenant, delta.name, delta.value)));
}

export async function producerMetrics(db: D1Database, tenant: string): Promise<Partial<Record<ProducerCounter, number>>> {
	const { results } = await db.prepare("SELECT name, value FROM producer_metrics WHERE tenant = ?1").bind(tenant).all<{ name: ProducerCounter; value: number }>();
	return Object.fromEntries(results.map((row) => [row.name, row.value]));
}

export async function pipelineOperations(db: D1Database): Promise<Partial<Record<OperationCounter, number>>> {
	const { results } = await db.prepare("SELECT name, value FROM producer_metrics WHERE tenant = ?1").bind(PIPELINE_WIDE).all<{ name: OperationCounter; value: number }>();
	return Object.fromEntries(results.map((row) => [row.name, row.value]));
}

/** Up to `limit` tenant ids after `after` (every id sorts after ""), in id order. */
export async function listTenantIds(db: D1Database, after: string, limit: number): Promise<string[]> {
	const { results } = await db.prepare("SELECT id FROM tenants WHERE id > ?1 ORDER BY id LIMIT ?2").bind(after, limit).all<{ id: string }>();
	return results.map((row) => row.id);
}

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
	await db.batch(rows.map((row) => statement.bind(row.id, row.tenant, row.body, row.error, row.attempts, row.first_failed_at, row.last_failed_at)));
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
	const { n } = (await db.prepare(RECENT_DEAD_LETTERS).bind(since, cap + 1).first<{ n: number }>())!;
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
