-- Dead letters kept for inspection and replay, and the producers' counters.

-- body is superjson text, so typed values (dates, big integers, maps) replay exactly as sent.
CREATE TABLE dead_letters (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	tenant TEXT,
	body TEXT NOT NULL,
	error TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	first_failed_at TEXT NOT NULL,
	last_failed_at TEXT NOT NULL,
	replayed_at TEXT
);
CREATE INDEX dead_letters_tenant ON dead_letters (tenant, seq);
CREATE INDEX dead_letters_last_failed ON dead_letters (last_failed_at);

-- Counters each producer isolate adds to every METRICS_REPORT_MS (received, enqueued, …).
CREATE TABLE producer_metrics (
	tenant TEXT NOT NULL,
	name TEXT NOT NULL,
	value INTEGER NOT NULL,
	PRIMARY KEY (tenant, name)
);
