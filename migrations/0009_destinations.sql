-- Per-tenant forwarding destinations (PostHog, Segment, Mixpanel, Amplitude, a webhook) and the
-- batches each one refused past its retry budget, kept for inspection and replay.

-- config is JSON text without secrets; secret is the AES-GCM ciphertext (base64 of iv ‖ ciphertext)
-- of the secret fields' JSON, bound to tenant and id. test is 1 for a test space's ("<tenant>~test").
-- The health columns are written by the forward consumer after every delivery attempt.
CREATE TABLE destinations (
	tenant TEXT NOT NULL,
	id TEXT NOT NULL,
	kind TEXT NOT NULL,
	config TEXT NOT NULL,
	secret TEXT NOT NULL,
	test INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	delivered INTEGER NOT NULL DEFAULT 0,
	dead_lettered INTEGER NOT NULL DEFAULT 0,
	consecutive_failures INTEGER NOT NULL DEFAULT 0,
	failing_since TEXT,
	last_success_at TEXT,
	last_failure_at TEXT,
	last_error TEXT,
	last_dead_letter_at TEXT,
	PRIMARY KEY (tenant, id)
);

-- events is the JSON text of the QueuedEvent array that was not delivered.
CREATE TABLE forward_dead_letters (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	tenant TEXT NOT NULL,
	destination TEXT NOT NULL,
	events TEXT NOT NULL,
	error TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	first_failed_at TEXT NOT NULL,
	last_failed_at TEXT NOT NULL
);
CREATE INDEX forward_dead_letters_destination ON forward_dead_letters (tenant, destination, seq);
