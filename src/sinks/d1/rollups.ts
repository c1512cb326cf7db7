// The rollups in D1: each flush applied once under the flush ledger, the reports over them, and the
// folding of old event minutes into hours.
import {
	EVENT_ROLLUP,
	fromSql,
	isPacked,
	mergeRow,
	onConflictMerge,
	rowKey,
	selectList,
	SERIES_ROLLUP,
	sqlColumns,
	sqlValues,
	type RollupRow,
	type RollupSpec,
} from "../rollups.js";

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
	const packed = [...batch.rows].filter(([spec, rows]) => isPacked(spec) && rows.length > 0);
	let rows = batch.rows;
	if (packed.length > 0) {
		// Packed rollups merge in JavaScript: what D1 holds for their keys is read first, and
		// replaced by the merge. The aggregator is the one writer of its tenant's rows and runs one
		// flush at a time, so nothing changes them between the read and the write; a flush the
		// ledger already holds was applied, and is not merged a second time.
		const lookups = packed.map(([spec, specRows]) => storedRowsStatements(db, spec, tenant, specRows));
		const reads = await db.batch<Record<string, unknown>>([
			db.prepare("SELECT 1 AS applied FROM flushes WHERE tenant = ?1 AND flush_id = ?2").bind(tenant, batch.flushId),
			...lookups.flat(),
		]);
		if (reads[0]!.results.length > 0) return false;
		rows = new Map(batch.rows);
		let next = 1;
		packed.forEach(([spec, specRows], i) => {
			const stored = reads.slice(next, next + lookups[i]!.length).flatMap((result) => result.results);
			next += lookups[i]!.length;
			rows.set(spec, mergeStored(spec, specRows, stored));
		});
	}
	const statements: D1PreparedStatement[] = [];
	let rowCount = 0;
	for (const [spec, specRows] of rows) {
		rowCount += specRows.length;
		statements.push(...(isPacked(spec) ? packedStatements : rollupStatements)(db, spec, tenant, batch.flushId, specRows));
	}
	// Last, so every guard above still sees the flush as new within this transaction.
	statements.push(
		db
			.prepare("INSERT INTO flushes (tenant, flush_id, rows, flushed_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")
			.bind(tenant, batch.flushId, rowCount, now),
		db.prepare("DELETE FROM flushes WHERE tenant = ?1 AND flush_id <> ?2").bind(tenant, batch.flushId),
	);
	const results = await db.batch(statements);
	if (batch.stats) batch.stats.rowsWritten = results.reduce((sum, result) => sum + (result.meta.rows_written ?? 0), 0);
	return results[results.length - 2]!.meta.changes === 1;
}

/** Rows of JSON one statement binds: D1 takes bound values of up to ~2 MB, and the statement stays small. */
const JSON_CHUNK_CHARS = 800_000;

/** Splits rows into chunks whose JSON (as `encode` makes it) stays below JSON_CHUNK_CHARS. */
export function jsonChunks<T>(rows: T[], encode: (row: T) => string): string[] {
	const chunks: string[] = [];
	let current: string[] = [];
	let chars = 0;
	for (const row of rows) {
		const text = encode(row);
		if (current.length > 0 && chars + text.length > JSON_CHUNK_CHARS) {
			chunks.push(`[${current.join(",")}]`);
			current = [];
			chars = 0;
		}
		current.push(text);
		chars += text.length + 1;
	}
	if (current.length > 0) chunks.push(`[${current.join(",")}]`);
	return chunks;
}

/** SELECTs of the stored rows with the keys of `rows`: one lookup by primary key per key. */
function storedRowsStatements(db: D1Database, spec: RollupSpec, tenant: string, rows: RollupRow[]): D1PreparedStatement[] {
	const match = spec.keys.map((key, i) => `t.${key} = json_extract(k.value, '$[${i}]')`).join(" AND ");
	// CROSS JOIN keeps the keys as the outer loop, so each one is a primary-key lookup.
	const sql = `SELECT ${selectList(spec, false)} FROM (SELECT t.* FROM json_each(?2) AS k CROSS JOIN ${spec.table} AS t WHERE t.tenant = ?1 AND ${match})`;
	return jsonChunks(rows, (row) => JSON.stringify(spec.keys.map((key) => row[key]))).map((keys) => db.prepare(sql).bind(tenant, keys));
}

/** The incoming rows, each merged into the row D1 holds for its key. */
function mergeStored(spec: RollupSpec, rows: RollupRow[], stored: Record<string, unknown>[]): RollupRow[] {
	const byKey = new Map(stored.map((raw) => [rowKey(spec, fromSql(spec, raw)), fromSql(spec, raw)]));
	return rows.map((row) => {
		const existing = byKey.get(rowKey(spec, row));
		if (!existing) return row;
		mergeRow(spec, existing, row);
		return existing;
	});
}

/** Upserts of merged packed rows, bound as JSON arrays, ledger-guarded like every rollup write. */
function packedStatements(db: D1Database, spec: RollupSpec, tenant: string, flushId: string, rows: RollupRow[]): D1PreparedStatement[] {
	const columns = sqlColumns(spec);
	const values = columns.map((_, i) => `json_extract(value, '$[${i}]')`).join(", ");
	const sql =
		`INSERT INTO ${spec.table} (tenant, ${columns.join(", ")}) SELECT ?1, ${values} FROM json_each(?3) ` +
		`WHERE NOT EXISTS (SELECT 1 FROM flushes WHERE tenant = ?1 AND flush_id = ?2) ` +
		onConflictMerge(spec, ["tenant", ...spec.keys]);
	return jsonChunks(rows, (row) => JSON.stringify(sqlValues(spec, row))).map((chunk) => db.prepare(sql).bind(tenant, flushId, chunk));
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

/** Which rows a report takes, and how it groups them. */
export interface ReportOptions {
	/** The D1 rows folded into the coarser table count too (false for minute granularity). */
	compacted?: boolean;
	/** The keys to group by besides the bucket (default: every key but the time). */
	keys?: readonly string[];
	/** Only rows whose key has this value, or one of these values. */
	where?: Record<string, string | readonly string[]>;
	/** Only the rows of the first `limit` values of `key` after `after`, across every rollup in `among`. */
	page?: ReportPage;
}

export interface ReportPage {
	key: string;
	after: string | null;
	limit: number;
	/** The rollups whose values make up the pages, so every report of one request sees the same page. */
	among: readonly RollupSpec[];
}

/**
 * One report over a rollup: its rows in [from, to) summed per bucket (`bucket` is the ISO prefix
 * of the granularity) and per remaining key. With `compacted`, rows folded into the coarser
 * table count too; the two never hold the same data, since folding moves rows in one transaction.
 * A page takes one more value than its limit, so the caller knows whether another page follows.
 */
export function rollupReport(
	db: D1Database,
	spec: RollupSpec,
	tenant: string,
	from: string,
	to: string,
	granularity: Granularity,
	options: ReportOptions = {},
): D1PreparedStatement {
	const { compacted = true, where = {}, page } = options;
	const keys = options.keys ?? spec.keys.filter((key) => key !== spec.time);
	const binds: (string | number)[] = [tenant, from, to, BUCKET_PREFIX[granularity]];
	const bind = (value: string | number) => {
		binds.push(value);
		return `?${binds.length}`;
	};
	const conditions = Object.entries(where).map(([key, wanted]) => ` AND ${inCondition(key, wanted, bind)}`);
	if (page) {
		const values = page.among
			.map((among) => `SELECT ${page.key} AS v FROM ${among.table} WHERE tenant = ?1 AND ${among.time} >= ?2 AND ${among.time} < ?3`)
			.join(" UNION ");
		const after = page.after === null ? "" : `WHERE v > ${bind(page.after)}`;
		conditions.push(` AND ${page.key} IN (SELECT v FROM (${values}) ${after} ORDER BY v LIMIT ${bind(page.limit + 1)})`);
	}
	const filter = conditions.join("");
	const stored = sqlColumns(spec).filter((column) => column !== spec.time);
	const source = (table: string, time: string) =>
		`SELECT ${time} AS t, ${stored.join(", ")} FROM ${table} WHERE tenant = ?1 AND ${time} >= ?2 AND ${time} < ?3${filter}`;
	const sources = [source(spec.table, spec.time)];
	if (compacted && spec.compacted) sources.push(source(spec.compacted.table, spec.compacted.time));
	const groups = ["bucket", ...keys].join(", ");
	return db
		.prepare(
			`SELECT substr(t, 1, ?4) AS bucket, ${selectList(spec, true, keys)} FROM (${sources.join(" UNION ALL ")}) GROUP BY ${groups} ORDER BY ${groups}`,
		)
		.bind(...binds);
}

/**
 * Folds a tenant's event rollups for minutes before `before` into hours, in one transaction, so
 * rows move and never exist in both tables, and drops its series minutes as old. Running it again
 * finds nothing to move.
 */
export async function compactEventMinutes(db: D1Database, tenant: string, before: string): Promise<number> {
	const spec = EVENT_ROLLUP;
	const compacted = spec.compacted!;
	const measures = Object.keys(spec.measures);
	const [insert, remove, series] = await db.batch([
		db
			.prepare(
				`INSERT INTO ${compacted.table} (tenant, event, ${compacted.time}, ${measures.join(", ")})
				 SELECT tenant, event, substr(minute, 1, 13) || ':00:00.000Z', ${selectList(spec, true).replace(/^event, /, "")}
				 FROM ${spec.table} WHERE tenant = ?1 AND minute < ?2 GROUP BY event, substr(minute, 1, 13)
				 ${onConflictMerge(spec, ["tenant", "event", compacted.time])}`,
			)
			.bind(tenant, before),
		db.prepare(`DELETE FROM ${spec.table} WHERE tenant = ?1 AND minute < ?2`).bind(tenant, before),
		// The series keep their hours and days for good; only their minutes go, at the same age.
		db.prepare(`DELETE FROM ${SERIES_ROLLUP.table} WHERE tenant = ?1 AND grain = 'minute' AND bucket < ?2`).bind(tenant, before),
	]);
	return [insert, remove, series].reduce((sum, result) => sum + (result!.meta.rows_written ?? 0), 0);
}

/** A key filter on a packed rollup's rows: one value, or any of several. */
export type KeyFilter = Record<string, string | number | readonly (string | number)[]>;

/** Whether a row passes a key filter and lies in [from, to). */
export function rowMatches(spec: RollupSpec, row: RollupRow, from: string, to: string, where: KeyFilter): boolean {
	const time = row[spec.time] as string;
	if (time < from || time >= to) return false;
	for (const [key, wanted] of Object.entries(where)) {
		if (Array.isArray(wanted) ? !wanted.includes(row[key] as string | number) : row[key] !== wanted) return false;
	}
	return true;
}

/** A packed rollup's stored rows in [from, to) that pass `where`, as stored (they merge in JavaScript). */
export function packedReport(
	db: D1Database,
	spec: RollupSpec,
	tenant: string,
	from: string,
	to: string,
	where: KeyFilter,
): D1PreparedStatement {
	const binds: (string | number)[] = [tenant, from, to];
	const conditions = Object.entries(where).map(([key, wanted]) => {
		if (!spec.keys.includes(key)) throw new Error(`${key} is not a key of ${spec.name}`);
		return inCondition(key, wanted, (value) => {
			binds.push(value);
			return `?${binds.length}`;
		});
	});
	const filter = conditions.map((condition) => ` AND ${condition}`).join("");
	return db
		.prepare(
			`SELECT ${selectList(spec, false)} FROM ${spec.table} WHERE tenant = ?1 AND ${spec.time} >= ?2 AND ${spec.time} < ?3${filter}`,
		)
		.bind(...binds);
}

/** `key = ?`, or for a list `key IN` its values as one bound JSON array (a list may outgrow D1's 100 binds). */
function inCondition(
	key: string,
	wanted: string | number | readonly (string | number)[],
	bind: (value: string | number) => string,
): string {
	return Array.isArray(wanted)
		? `${key} IN (SELECT value FROM json_each(${bind(JSON.stringify(wanted))}))`
		: `${key} = ${bind(wanted as string | number)}`;
}
