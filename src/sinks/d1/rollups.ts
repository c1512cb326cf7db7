// The rollups in D1: each flush applied once under the flush ledger, the reports over them, and the
// folding of old event minutes into hours.
import { EVENT_ROLLUP, onConflictMerge, selectList, sqlColumns, sqlValues, type RollupRow, type RollupSpec } from "../rollups.js";

/** D1 binds at most 100 parameters per statement. */
const MAX_BINDS = 100;

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
export function rollupReport(
	db: D1Database,
	spec: RollupSpec,
	tenant: string,
	from: string,
	to: string,
	granularity: Granularity,
	compacted = true,
): D1PreparedStatement {
	const keys = spec.keys.filter((key) => key !== spec.time);
	const stored = sqlColumns(spec).filter((column) => column !== spec.time);
	const source = (table: string, time: string) =>
		`SELECT ${time} AS t, ${stored.join(", ")} FROM ${table} WHERE tenant = ?1 AND ${time} >= ?2 AND ${time} < ?3`;
	const sources = [source(spec.table, spec.time)];
	if (compacted && spec.compacted) sources.push(source(spec.compacted.table, spec.compacted.time));
	const groups = ["bucket", ...keys].join(", ");
	return db
		.prepare(
			`SELECT substr(t, 1, ?4) AS bucket, ${selectList(spec, true)} FROM (${sources.join(" UNION ALL ")}) GROUP BY ${groups} ORDER BY ${groups}`,
		)
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
