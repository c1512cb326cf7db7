// Plans, subscription timelines and frozen invoices in D1.
import { jsonChunks } from "./rollups.js";

export interface PlanRow {
	key: string;
	version: number;
	definition: string;
	created_at: string;
}

export interface SubscriptionRow {
	customer: string;
	start_at: string;
	plan_key: string | null;
	plan_version: number | null;
}

export interface InvoiceRow {
	customer: string;
	invoice: string;
	frozen_at: string;
}

/** Adds the next version of a plan (1 for a new key) in one statement, so two edits never share a version. */
export async function insertPlanVersion(db: D1Database, tenant: string, key: string, definition: string, now: string): Promise<number> {
	const row = await db
		.prepare(
			`INSERT INTO plans (tenant, key, version, definition, created_at)
			 SELECT ?1, ?2, coalesce(max(version), 0) + 1, ?3, ?4 FROM plans WHERE tenant = ?1 AND key = ?2
			 RETURNING version`,
		)
		.bind(tenant, key, definition, now)
		.first<{ version: number }>();
	return row!.version;
}

/** The newest version of every plan, by key. */
export async function latestPlans(db: D1Database, tenant: string): Promise<PlanRow[]> {
	const { results } = await db
		.prepare(
			`SELECT key, version, definition, created_at FROM plans p WHERE tenant = ?1
			 AND version = (SELECT max(version) FROM plans WHERE tenant = ?1 AND key = p.key) ORDER BY key`,
		)
		.bind(tenant)
		.all<PlanRow>();
	return results;
}

/** One version of a plan, or its newest when `version` is null. */
export function findPlan(db: D1Database, tenant: string, key: string, version: number | null): Promise<PlanRow | null> {
	return db
		.prepare(
			`SELECT key, version, definition, created_at FROM plans WHERE tenant = ?1 AND key = ?2
			 AND version = coalesce(?3, (SELECT max(version) FROM plans WHERE tenant = ?1 AND key = ?2))`,
		)
		.bind(tenant, key, version)
		.first<PlanRow>();
}

/** The versions of one plan, oldest first. */
export async function planVersions(db: D1Database, tenant: string, key: string): Promise<{ version: number; created_at: string }[]> {
	const { results } = await db
		.prepare("SELECT version, created_at FROM plans WHERE tenant = ?1 AND key = ?2 ORDER BY version")
		.bind(tenant, key)
		.all<{ version: number; created_at: string }>();
	return results;
}

/** Plan versions by (key, version), read in one statement. */
export async function plansByVersion(db: D1Database, tenant: string, wanted: { key: string; version: number }[]): Promise<PlanRow[]> {
	if (wanted.length === 0) return [];
	const { results } = await db
		.prepare(
			`SELECT key, version, definition, created_at FROM plans WHERE tenant = ?1 AND (key, version) IN
			 (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?2))`,
		)
		.bind(tenant, JSON.stringify(wanted.map((w) => [w.key, w.version])))
		.all<PlanRow>();
	return results;
}

/**
 * Sets a customer's plan from `startAt` on: the timeline's rows from then on are replaced by one,
 * in one transaction. Both statements are guarded by the closed periods: a change that would reach
 * into a closed month (or before it) writes nothing, and returns false.
 */
export async function replaceSubscriptionFrom(
	db: D1Database,
	tenant: string,
	customer: string,
	startAt: string,
	plan: { key: string; version: number } | null,
	now: string,
): Promise<boolean> {
	const open = "NOT EXISTS (SELECT 1 FROM closed_periods WHERE tenant = ?1 AND period >= substr(?3, 1, 7))";
	const [, inserted] = await db.batch([
		db
			.prepare(`DELETE FROM subscriptions WHERE tenant = ?1 AND customer = ?2 AND start_at >= ?3 AND ${open}`)
			.bind(tenant, customer, startAt),
		db
			.prepare(
				`INSERT INTO subscriptions (tenant, customer, start_at, plan_key, plan_version, created_at)
				 SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE ${open}`,
			)
			.bind(tenant, customer, startAt, plan?.key ?? null, plan?.version ?? null, now),
	]);
	return inserted!.meta.changes === 1;
}

/** One customer's timeline, oldest first. */
export async function subscriptionTimeline(db: D1Database, tenant: string, customer: string): Promise<SubscriptionRow[]> {
	const { results } = await db
		.prepare(
			"SELECT customer, start_at, plan_key, plan_version FROM subscriptions WHERE tenant = ?1 AND customer = ?2 ORDER BY start_at",
		)
		.bind(tenant, customer)
		.all<SubscriptionRow>();
	return results;
}

/**
 * The timelines of the first `limit` customers after `after` (in code point order, which is
 * SQLite's binary order) that are subscribed at some instant of [from, to): each customer's rows
 * that start before `to`, oldest first. A customer whose last row before `from` ends the
 * subscription, and who has no row inside the range, is not subscribed then.
 */
export async function subscribedTimelines(
	db: D1Database,
	tenant: string,
	from: string,
	to: string,
	after: string | null,
	limit: number,
): Promise<SubscriptionRow[]> {
	const { results } = await db
		.prepare(
			`WITH subscribed AS (
				SELECT DISTINCT customer FROM subscriptions s WHERE tenant = ?1 AND customer > ?4 AND (
					(start_at >= ?2 AND start_at < ?3 AND plan_key IS NOT NULL)
					OR (start_at < ?2 AND plan_key IS NOT NULL AND start_at = (
						SELECT max(start_at) FROM subscriptions WHERE tenant = ?1 AND customer = s.customer AND start_at < ?2))
				) ORDER BY customer LIMIT ?5
			)
			SELECT customer, start_at, plan_key, plan_version FROM subscriptions
			WHERE tenant = ?1 AND customer IN (SELECT customer FROM subscribed) AND start_at < ?3 ORDER BY customer, start_at`,
		)
		.bind(tenant, from, to, after ?? "", limit)
		.all<SubscriptionRow>();
	return results;
}

/**
 * Stores a closed period's invoices (one customer's already stored keeps its first version), in
 * one transaction, as few statements as D1's bound value size allows.
 */
export async function insertInvoices(
	db: D1Database,
	tenant: string,
	period: string,
	invoices: { customer: string; currency: string; total: number; invoice: string }[],
	now: string,
): Promise<number> {
	if (invoices.length === 0) return 0;
	const statements = jsonChunks(invoices, (row) => JSON.stringify(row)).map((chunk) =>
		db
			.prepare(
				`INSERT INTO invoices (tenant, period, customer, currency, total, invoice, frozen_at)
				 SELECT ?1, ?2, value ->> '$.customer', value ->> '$.currency', value ->> '$.total', value ->> '$.invoice', ?4
				 FROM json_each(?3) WHERE true ON CONFLICT DO NOTHING`,
			)
			.bind(tenant, period, chunk, now),
	);
	const results = await db.batch(statements);
	return results.reduce((sum, result) => sum + (result.meta.changes ?? 0), 0);
}

/** A closed period's stored invoices of these customers. */
export async function storedInvoices(db: D1Database, tenant: string, period: string, customers: readonly string[]): Promise<InvoiceRow[]> {
	const { results } = await db
		.prepare(
			`SELECT customer, invoice, frozen_at FROM invoices WHERE tenant = ?1 AND period = ?2
			 AND customer IN (SELECT value FROM json_each(?3)) ORDER BY customer`,
		)
		.bind(tenant, period, JSON.stringify(customers))
		.all<InvoiceRow>();
	return results;
}

/** Whether a tenant's month is closed. */
export async function isPeriodClosed(db: D1Database, tenant: string, period: string): Promise<boolean> {
	const row = await db.prepare("SELECT 1 AS closed FROM closed_periods WHERE tenant = ?1 AND period = ?2").bind(tenant, period).first();
	return row !== null;
}
