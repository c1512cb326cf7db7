-- Usage per customer, tenant-defined meters, and the query rollups (percentiles, unique users).

-- customer '' is "no customer": the key must be NOT NULL to stay unique, and a customerId is
-- never empty. SQLite cannot change a primary key in place, so both usage tables are rebuilt.
CREATE TABLE usage_rollups_v5 (
	tenant TEXT NOT NULL,
	customer TEXT NOT NULL DEFAULT '',
	sku TEXT NOT NULL,
	unit TEXT NOT NULL,
	hour TEXT NOT NULL,
	micros_hi INTEGER NOT NULL,
	micros_lo INTEGER NOT NULL,
	events INTEGER NOT NULL,
	PRIMARY KEY (tenant, customer, sku, unit, hour)
);
INSERT INTO usage_rollups_v5 (tenant, customer, sku, unit, hour, micros_hi, micros_lo, events)
	SELECT tenant, '', sku, unit, hour, micros_hi, micros_lo, events FROM usage_rollups;
DROP TABLE usage_rollups;
ALTER TABLE usage_rollups_v5 RENAME TO usage_rollups;
CREATE INDEX usage_rollups_tenant_hour ON usage_rollups (tenant, hour);

CREATE TABLE usage_adjustments_v5 (
	tenant TEXT NOT NULL,
	customer TEXT NOT NULL DEFAULT '',
	sku TEXT NOT NULL,
	unit TEXT NOT NULL,
	period TEXT NOT NULL,
	booked TEXT NOT NULL,
	micros_hi INTEGER NOT NULL,
	micros_lo INTEGER NOT NULL,
	events INTEGER NOT NULL,
	PRIMARY KEY (tenant, customer, sku, unit, period, booked)
);
INSERT INTO usage_adjustments_v5 (tenant, customer, sku, unit, period, booked, micros_hi, micros_lo, events)
	SELECT tenant, '', sku, unit, period, booked, micros_hi, micros_lo, events FROM usage_adjustments;
DROP TABLE usage_adjustments;
ALTER TABLE usage_adjustments_v5 RENAME TO usage_adjustments;
CREATE INDEX usage_adjustments_tenant_booked ON usage_adjustments (tenant, booked);

-- One row per meter, customer, group values (a JSON array) and minute. value is an exact sum of
-- micro-units in two parts (like usage); min, max and latest are micro-units; distinct holds the
-- distinct values of a UNIQUE_COUNT meter (JSON, see src/sinks/measures.ts).
CREATE TABLE meter_rollups (
	tenant TEXT NOT NULL,
	meter INTEGER NOT NULL,
	customer TEXT NOT NULL DEFAULT '',
	groups TEXT NOT NULL,
	minute TEXT NOT NULL,
	count INTEGER NOT NULL,
	value_hi INTEGER NOT NULL,
	value_lo INTEGER NOT NULL,
	min INTEGER,
	max INTEGER,
	latest_at INTEGER,
	latest INTEGER,
	distinct_values TEXT,
	PRIMARY KEY (tenant, meter, customer, groups, minute)
);
CREATE INDEX meter_rollups_tenant_meter_minute ON meter_rollups (tenant, meter, minute);

-- Event series for the query API, at three grains (minute rows kept 7 days, hour and day rows
-- for good), by one dimension at a time: dim '' (value '') is the event's total, else route,
-- status or country. durations is a DDSketch, users a HyperLogLog (src/shared/quantiles.ts, hll.ts).
CREATE TABLE series_rollups (
	tenant TEXT NOT NULL,
	grain TEXT NOT NULL CHECK (grain IN ('minute', 'hour', 'day')),
	event TEXT NOT NULL,
	dim TEXT NOT NULL,
	value TEXT NOT NULL,
	bucket TEXT NOT NULL,
	count INTEGER NOT NULL,
	errors INTEGER NOT NULL,
	durations TEXT NOT NULL,
	users TEXT NOT NULL,
	PRIMARY KEY (tenant, grain, event, dim, value, bucket)
);
CREATE INDEX series_rollups_tenant_grain_dim_bucket ON series_rollups (tenant, grain, dim, bucket);
