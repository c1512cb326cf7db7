-- Plans, subscriptions and frozen invoices.

-- A plan is versioned: editing it adds a version, and a subscription names the version it is on,
-- so an edit never reprices anyone until their subscription is changed. definition is the plan as
-- the API shows it, plus each meter rate card's meter id (a meter's slug may be reused later).
CREATE TABLE plans (
	tenant TEXT NOT NULL,
	key TEXT NOT NULL,
	version INTEGER NOT NULL,
	definition TEXT NOT NULL,
	created_at TEXT NOT NULL,
	PRIMARY KEY (tenant, key, version)
);

-- A customer's subscription as a timeline: from start_at on, the customer is on plan_key at
-- plan_version, until the next row's start_at. A row with a NULL plan ends the subscription.
CREATE TABLE subscriptions (
	tenant TEXT NOT NULL,
	customer TEXT NOT NULL,
	start_at TEXT NOT NULL,
	plan_key TEXT,
	plan_version INTEGER,
	created_at TEXT NOT NULL,
	PRIMARY KEY (tenant, customer, start_at)
);

-- The invoices of a closed period, as computed when it was closed; never changed afterwards.
CREATE TABLE invoices (
	tenant TEXT NOT NULL,
	period TEXT NOT NULL,
	customer TEXT NOT NULL,
	currency TEXT NOT NULL,
	total INTEGER NOT NULL,
	invoice TEXT NOT NULL,
	frozen_at TEXT NOT NULL,
	PRIMARY KEY (tenant, period, customer)
);
