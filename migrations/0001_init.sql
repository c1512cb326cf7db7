-- Meterline's D1 schema: tenants and their hashed keys, exact usage rollups (the billing source
-- of truth), event rollups, and the flush ledger that makes every aggregator flush idempotent.

CREATE TABLE tenants (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	created_at TEXT NOT NULL
);

-- Raw keys are never stored: only their SHA-256 hash and a short public prefix for revocation.
CREATE TABLE api_keys (
	key_hash TEXT PRIMARY KEY,
	prefix TEXT NOT NULL UNIQUE,
	tenant_id TEXT NOT NULL REFERENCES tenants (id),
	scope TEXT NOT NULL CHECK (scope IN ('write', 'read')),
	created_at TEXT NOT NULL,
	revoked_at TEXT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- Quantities are integer micro-units (1 unit = 1,000,000), so sums are exact.
CREATE TABLE usage_rollups (
	tenant TEXT NOT NULL,
	sku TEXT NOT NULL,
	unit TEXT NOT NULL,
	hour TEXT NOT NULL,
	quantity_micros INTEGER NOT NULL,
	events INTEGER NOT NULL,
	PRIMARY KEY (tenant, sku, unit, hour)
);
CREATE INDEX usage_rollups_tenant_hour ON usage_rollups (tenant, hour);

CREATE TABLE event_rollups (
	tenant TEXT NOT NULL,
	event TEXT NOT NULL,
	minute TEXT NOT NULL,
	count INTEGER NOT NULL,
	errors INTEGER NOT NULL,
	duration_count INTEGER NOT NULL,
	duration_sum REAL NOT NULL,
	duration_min REAL,
	duration_max REAL,
	PRIMARY KEY (tenant, event, minute)
);
CREATE INDEX event_rollups_tenant_minute ON event_rollups (tenant, minute);

-- One row per applied aggregator flush: a flush whose row exists is never applied again.
CREATE TABLE flushes (
	tenant TEXT NOT NULL,
	flush_id TEXT NOT NULL,
	rows INTEGER NOT NULL,
	flushed_at TEXT NOT NULL,
	PRIMARY KEY (tenant, flush_id)
);
