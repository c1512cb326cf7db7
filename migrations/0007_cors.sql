-- The browser origins a tenant's write key may be used from. No row: any origin (the default).

-- allowed_origins is JSON text of an array of origins ("https://app.example.com"), normalised as
-- browsers send them in the Origin header; an empty array allows no browser origin at all.
CREATE TABLE tenant_cors (
	tenant TEXT PRIMARY KEY REFERENCES tenants (id),
	allowed_origins TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
