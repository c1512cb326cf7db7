-- Events the Segment- and PostHog-compatible APIs refused one by one, kept so the tenant can see why.

-- issues is JSON text of [{path, message}]; body is the foreign message as JSON text (redacted,
-- cut to 8 KB with a marker). The producer keeps 30 days and at most 10,000 rows per tenant.
CREATE TABLE rejections (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	tenant TEXT NOT NULL,
	received_at TEXT NOT NULL,
	source TEXT NOT NULL CHECK (source IN ('segment', 'posthog')),
	event_id TEXT,
	place TEXT NOT NULL,
	issues TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX rejections_tenant_seq ON rejections (tenant, seq);
CREATE INDEX rejections_tenant_received ON rejections (tenant, received_at);
