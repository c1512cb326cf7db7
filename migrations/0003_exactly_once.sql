-- Exact sums past int64, the closed-period rule, and bounded event rollups.

-- A usage sum is two integers: micros_hi counts 10^12 micro-units, micros_lo (< 10^12) the rest,
-- so neither an upsert nor SUM() over a report can pass int64 (9.2 × 10^12 units).
ALTER TABLE usage_rollups RENAME COLUMN quantity_micros TO micros_lo;
ALTER TABLE usage_rollups ADD COLUMN micros_hi INTEGER NOT NULL DEFAULT 0;
UPDATE usage_rollups SET micros_hi = micros_lo / 1000000000000, micros_lo = micros_lo % 1000000000000;

-- Closed billing months: their usage never changes again.
CREATE TABLE closed_periods (
	tenant TEXT NOT NULL,
	period TEXT NOT NULL,
	closed_at TEXT NOT NULL,
	PRIMARY KEY (tenant, period)
);

-- Usage for a closed month that arrived after it was closed, booked into the month it arrived in.
CREATE TABLE usage_adjustments (
	tenant TEXT NOT NULL,
	sku TEXT NOT NULL,
	unit TEXT NOT NULL,
	period TEXT NOT NULL,
	booked TEXT NOT NULL,
	micros_hi INTEGER NOT NULL,
	micros_lo INTEGER NOT NULL,
	events INTEGER NOT NULL,
	PRIMARY KEY (tenant, sku, unit, period, booked)
);
CREATE INDEX usage_adjustments_tenant_booked ON usage_adjustments (tenant, booked);

-- Event rollups older than the minute retention, folded into hours by the tenant's aggregator.
CREATE TABLE event_rollups_hourly (
	tenant TEXT NOT NULL,
	event TEXT NOT NULL,
	hour TEXT NOT NULL,
	count INTEGER NOT NULL,
	errors INTEGER NOT NULL,
	duration_count INTEGER NOT NULL,
	duration_sum REAL NOT NULL,
	duration_min REAL,
	duration_max REAL,
	PRIMARY KEY (tenant, event, hour)
);
CREATE INDEX event_rollups_hourly_tenant_hour ON event_rollups_hourly (tenant, hour);
