// The aggregator's SQLite schema: an append-only list of migrations, each applied exactly once.

/**
 * Never edit an entry once shipped: add a new one. In the pending tables, batch 0 holds open
 * deltas; sealing a flush moves its rows to batch n, where they stay until D1 has committed them.
 */
const MIGRATIONS: readonly string[] = [
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
];

/** Applies the migrations this storage has not seen yet. Call inside blockConcurrencyWhile. */
export function migrate(sql: SqlStorage): void {
	sql.exec("CREATE TABLE IF NOT EXISTS _migrations (version INTEGER PRIMARY KEY)");
	const applied = sql.exec<{ version: number }>("SELECT coalesce(max(version), 0) AS version FROM _migrations").one().version;
	for (let version = applied + 1; version <= MIGRATIONS.length; version++) {
		sql.exec(MIGRATIONS[version - 1]!);
		sql.exec("INSERT INTO _migrations (version) VALUES (?)", version);
	}
}
