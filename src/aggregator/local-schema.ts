// The aggregator's SQLite schema: an append-only list of migrations, each applied exactly once.
import { initialState } from "./state.js";

/**
 * Never edit an entry once shipped: add a new one. In the pending tables, batch 0 holds open
 * deltas; sealing a flush moves its rows to batch n, where they stay until D1 has committed them.
 */
const MIGRATIONS: readonly (string | ((sql: SqlStorage) => void))[] = [
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
	 CREATE TABLE seen_events (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL) WITHOUT ROWID;
	 CREATE INDEX seen_events_seen_at ON seen_events (seen_at);
	 CREATE TABLE pending_usage (
		batch INTEGER NOT NULL, sku TEXT NOT NULL, unit TEXT NOT NULL, hour TEXT NOT NULL,
		quantity_micros INTEGER NOT NULL, events INTEGER NOT NULL,
		PRIMARY KEY (batch, sku, unit, hour));
	 CREATE TABLE pending_events (
		batch INTEGER NOT NULL, event TEXT NOT NULL, minute TEXT NOT NULL,
		count INTEGER NOT NULL, errors INTEGER NOT NULL, duration_count INTEGER NOT NULL,
		duration_sum REAL NOT NULL, duration_min REAL, duration_max REAL,
		PRIMARY KEY (batch, event, minute));
	 CREATE TABLE analytics_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, point TEXT NOT NULL);`,
	// One row of counters (one row write per RPC, not one per counter), and events the producer
	// could not enqueue, kept here until the alarm re-enqueues them.
	`CREATE TABLE counters (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		consumed INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
		aggregated INTEGER NOT NULL DEFAULT 0, flushed_rows INTEGER NOT NULL DEFAULT 0,
		flush_failures INTEGER NOT NULL DEFAULT 0, spilled INTEGER NOT NULL DEFAULT 0,
		respooled INTEGER NOT NULL DEFAULT 0);
	 INSERT INTO counters (id) VALUES (1);
	 CREATE TABLE spilled_events (id INTEGER PRIMARY KEY AUTOINCREMENT, events TEXT NOT NULL, spilled_at INTEGER NOT NULL);`,
	// The platform operations this aggregator causes, counted for the benchmark's cost figures.
	`ALTER TABLE counters ADD COLUMN rpc_calls INTEGER NOT NULL DEFAULT 0;
	 ALTER TABLE counters ADD COLUMN alarms INTEGER NOT NULL DEFAULT 0;
	 ALTER TABLE counters ADD COLUMN sqlite_rows_written INTEGER NOT NULL DEFAULT 0;
	 ALTER TABLE counters ADD COLUMN d1_rows_written INTEGER NOT NULL DEFAULT 0;
	 ALTER TABLE counters ADD COLUMN analytics_points INTEGER NOT NULL DEFAULT 0;`,
	// Exactly once at a few rows per RPC: event ids packed into chunks per hour of event time, exact
	// usage sums in two integer columns, a queue of sealed batches, typed state in one row, and
	// the tables for closed periods, capped names, quarantined rows and a packed outbox.
	`ALTER TABLE pending_usage RENAME COLUMN quantity_micros TO micros_lo;
	 ALTER TABLE pending_usage ADD COLUMN micros_hi INTEGER NOT NULL DEFAULT 0;
	 UPDATE pending_usage SET micros_hi = micros_lo / 1000000000000, micros_lo = micros_lo % 1000000000000;
	 CREATE TABLE pending_adjustments (
		batch INTEGER NOT NULL, sku TEXT NOT NULL, unit TEXT NOT NULL, period TEXT NOT NULL, booked TEXT NOT NULL,
		micros_hi INTEGER NOT NULL, micros_lo INTEGER NOT NULL, events INTEGER NOT NULL,
		PRIMARY KEY (batch, sku, unit, period, booked));
	 CREATE TABLE seen_chunks (hour INTEGER NOT NULL, seq INTEGER NOT NULL, ids TEXT NOT NULL, PRIMARY KEY (hour, seq)) WITHOUT ROWID;
	 CREATE TABLE sealed (batch INTEGER PRIMARY KEY, since INTEGER NOT NULL);
	 CREATE TABLE closed_periods (period TEXT PRIMARY KEY);
	 CREATE TABLE names (kind TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (kind, name)) WITHOUT ROWID;
	 CREATE TABLE quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, flush_id TEXT NOT NULL, rollup TEXT NOT NULL, row TEXT NOT NULL, error TEXT NOT NULL, at INTEGER NOT NULL);
	 CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, points TEXT NOT NULL, count INTEGER NOT NULL);
	 CREATE TABLE state (id INTEGER PRIMARY KEY CHECK (id = 1), value TEXT NOT NULL);`,
	carryOverVersion3,
	// Usage per customer ('' for none: the key must be NOT NULL to stay unique), meters, and the
	// packed deltas of the high-cardinality rollups (meters, series): one row per ingest holding
	// all of that slice's folded rows, so ten meters add a row per RPC, not a row per key.
	`CREATE TABLE pending_usage_v5 (
		batch INTEGER NOT NULL, customer TEXT NOT NULL, sku TEXT NOT NULL, unit TEXT NOT NULL, hour TEXT NOT NULL,
		micros_hi INTEGER NOT NULL, micros_lo INTEGER NOT NULL, events INTEGER NOT NULL,
		PRIMARY KEY (batch, customer, sku, unit, hour));
	 INSERT INTO pending_usage_v5 SELECT batch, '', sku, unit, hour, micros_hi, micros_lo, events FROM pending_usage;
	 DROP TABLE pending_usage;
	 ALTER TABLE pending_usage_v5 RENAME TO pending_usage;
	 CREATE TABLE pending_adjustments_v5 (
		batch INTEGER NOT NULL, customer TEXT NOT NULL, sku TEXT NOT NULL, unit TEXT NOT NULL, period TEXT NOT NULL, booked TEXT NOT NULL,
		micros_hi INTEGER NOT NULL, micros_lo INTEGER NOT NULL, events INTEGER NOT NULL,
		PRIMARY KEY (batch, customer, sku, unit, period, booked));
	 INSERT INTO pending_adjustments_v5 SELECT batch, '', sku, unit, period, booked, micros_hi, micros_lo, events FROM pending_adjustments;
	 DROP TABLE pending_adjustments;
	 ALTER TABLE pending_adjustments_v5 RENAME TO pending_adjustments;
	 -- No index and no AUTOINCREMENT: each would cost a row written per ingest, and the table only
	 -- holds the chunks awaiting a flush, so scanning it is cheap.
	 CREATE TABLE pending_packed (seq INTEGER PRIMARY KEY, batch INTEGER NOT NULL, rows INTEGER NOT NULL, data TEXT NOT NULL);
	 CREATE TABLE meters (
		id INTEGER PRIMARY KEY AUTOINCREMENT, slug TEXT NOT NULL, definition TEXT NOT NULL,
		created_at INTEGER NOT NULL, deleted_at INTEGER);
	 CREATE UNIQUE INDEX meters_active_slug ON meters (slug) WHERE deleted_at IS NULL;
	 CREATE TABLE meter_groups (hour INTEGER NOT NULL, seq INTEGER NOT NULL, groups TEXT NOT NULL, PRIMARY KEY (hour, seq)) WITHOUT ROWID;`,
	// The raw-event archive's outbox: the new events of each ingest, one JSON row, until R2 has them.
	`CREATE TABLE pending_archive (seq INTEGER PRIMARY KEY, events TEXT NOT NULL, chars INTEGER NOT NULL, at INTEGER NOT NULL);`,
	// Archive parts already replayed through a meter (POST /v1/admin/backfill), so a replay counts once.
	`CREATE TABLE backfilled_parts (meter INTEGER NOT NULL, part TEXT NOT NULL, events INTEGER NOT NULL, at INTEGER NOT NULL,
		PRIMARY KEY (meter, part)) WITHOUT ROWID;`,
	// The archive outbox's events last: every alarm sums `chars` and finds the oldest `at`, and a
	// column after a row's megabyte of JSON is only reached through its overflow pages.
	`CREATE TABLE pending_archive_v9 (seq INTEGER PRIMARY KEY, chars INTEGER NOT NULL, at INTEGER NOT NULL, events TEXT NOT NULL);
	 INSERT INTO pending_archive_v9 (seq, chars, at, events) SELECT seq, chars, at, events FROM pending_archive;
	 DROP TABLE pending_archive;
	 ALTER TABLE pending_archive_v9 RENAME TO pending_archive;`,
];

/**
 * Moves what migrations 1 to 3 kept into the new tables: meta and counters into the state row,
 * the sealed batch into `sealed`, outbox points packed by 250, and remembered ids into chunks
 * (by the hour they arrived in, the nearest thing to their event time that was kept).
 */
function carryOverVersion3(sql: SqlStorage): void {
	const meta = new Map(
		sql
			.exec<{ key: string; value: string }>("SELECT key, value FROM meta")
			.toArray()
			.map((row) => [row.key, row.value]),
	);
	const counters = sql.exec<Record<string, number>>("SELECT * FROM counters").one();
	const state = initialState();
	const number = (key: string) => (meta.has(key) ? Number(meta.get(key)) : null);
	state.tenant = meta.get("tenant") ?? null;
	state.incarnation = meta.get("incarnation") ?? null;
	state.nextBatch = number("next_batch") ?? 1;
	state.openSince = number("open_since");
	state.retries.flush = { failures: number("flush_failures") ?? 0, retryAt: number("retry_at") ?? 0 };
	state.failingSince = number("failing_since");
	state.healthReported = state.failingSince === null ? "healthy" : "failing";
	state.retries.respool.retryAt = number("respool_retry_at") ?? 0;
	for (const name of Object.keys(state.counters) as (keyof typeof state.counters)[]) state.counters[name] = counters[name] ?? 0;
	for (const name of Object.keys(state.operations) as (keyof typeof state.operations)[]) state.operations[name] = counters[name] ?? 0;
	const sealed = number("sealed_batch");
	if (sealed !== null) sql.exec("INSERT INTO sealed (batch, since) VALUES (?, ?)", sealed, number("sealed_since") ?? Date.now());

	let points: string[] = [];
	const flushPoints = () => {
		if (points.length > 0) sql.exec("INSERT INTO outbox (points, count) VALUES (?, ?)", `[${points.join(",")}]`, points.length);
		points = [];
	};
	for (const row of sql.exec<{ point: string }>("SELECT point FROM analytics_outbox ORDER BY id")) {
		points.push(row.point);
		if (points.length === 250) flushPoints();
	}
	flushPoints();

	let chunk: { hour: number; ids: string[]; bytes: number } | null = null;
	const flushChunk = () => {
		if (chunk)
			sql.exec("INSERT INTO seen_chunks (hour, seq, ids) VALUES (?, ?, ?)", chunk.hour, state.nextChunk++, JSON.stringify(chunk.ids));
		chunk = null;
	};
	for (const row of sql.exec<{ id: string; seen_at: number }>("SELECT id, seen_at FROM seen_events ORDER BY seen_at")) {
		const hour = Math.floor(row.seen_at / 3_600_000);
		if (chunk && (chunk.hour !== hour || chunk.bytes > 500_000)) flushChunk();
		chunk ??= { hour, ids: [], bytes: 0 };
		chunk.ids.push(row.id);
		chunk.bytes += row.id.length * 3 + 3;
	}
	flushChunk();

	sql.exec("INSERT INTO state (id, value) VALUES (1, ?)", JSON.stringify(state));
	sql.exec("DROP TABLE meta; DROP TABLE counters; DROP TABLE analytics_outbox; DROP TABLE seen_events;");
}

/**
 * Applies the migrations this storage has not seen yet, all in one transaction: a new object (every
 * new tenant) runs every migration, and one commit starts it faster than one per migration, while
 * a failure still leaves the storage as it was. Call inside blockConcurrencyWhile.
 */
export function migrate(storage: DurableObjectStorage): void {
	const { sql } = storage;
	storage.transactionSync(() => {
		sql.exec("CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY)");
		const applied = sql.exec<{ version: number }>("SELECT coalesce(max(version), 0) AS version FROM _migrations").one().version;
		for (let version = applied + 1; version <= MIGRATIONS.length; version++) {
			const migration = MIGRATIONS[version - 1]!;
			if (typeof migration === "string") sql.exec(migration);
			else migration(sql);
			sql.exec("INSERT INTO _migrations (version) VALUES (?)", version);
		}
	});
}
