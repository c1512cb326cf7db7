// Helpers for the per-customer usage and timeseries tests: events fed straight into a tenant's
// aggregator, D1's usage tables seeded per customer in one statement, exact decimal expectations,
// the usage answers, the 400s, a deterministic PRNG and exact quantiles. The timeseries answers and
// their expectations are in series-helpers.ts.
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { call, getJson, mulberry32, type TestTenant } from "../helpers";

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;
export const iso = (ms: number) => new Date(ms).toISOString();

// ---- Events straight into the aggregator ----

let nextId = 0;
/** A queued event with an id no other event of the run has. */
export function queued(fields: Partial<QueuedEvent> & { timestamp: number }): QueuedEvent {
	return { id: `q-${nextId++}`, event: "api_call", ...fields };
}

/** A usage event: `micros` of `sku` (unit `unit`) at `timestamp`, for `customerId` when given. */
export function usageEvent(timestamp: number, micros: number, sku = "tokens", unit = "token", customerId?: string): QueuedEvent {
	return queued({ timestamp, usage: { sku, unit, micros }, ...(customerId !== undefined && { customerId }) });
}

/** The tenant's aggregator takes in `events` in slices of `slice`, every one accepted. */
export async function feed(tenant: TestTenant, events: QueuedEvent[], slice = 5000): Promise<void> {
	const stub = env.AGGREGATOR.getByName(tenant.id);
	for (let start = 0; start < events.length; start += slice) {
		const part = events.slice(start, start + slice);
		expect(await stub.ingest(tenant.id, part)).toEqual({ accepted: part.length, duplicates: 0, refused: [] });
	}
}

/** POST /v1/flush with the write key; the rows flushed. */
export async function flush(tenant: TestTenant): Promise<number> {
	const response = await call("/v1/flush", { method: "POST", key: tenant.writeKey });
	expect(response.status).toBe(200);
	return (await response.json<{ flushed: number }>()).flushed;
}

// ---- D1's usage tables, seeded per customer in one INSERT … SELECT ----

export interface CustomerUsageRow {
	/** "" is usage without a customer. */
	customer: string;
	sku: string;
	unit: string;
	/** ISO start of the UTC hour. */
	hour: string;
	micros: bigint;
	events: number;
}

const SPLIT = 10n ** 12n;

/** Inserts every row in one statement (a JSON array read with json_each), as flushed aggregators would have left them. */
export async function seedCustomerUsage(tenant: string, rows: CustomerUsageRow[]): Promise<void> {
	const values = rows.map((r) => [r.customer, r.sku, r.unit, r.hour, Number(r.micros / SPLIT), Number(r.micros % SPLIT), r.events]);
	await env.DB.prepare(
		`INSERT INTO usage_rollups (tenant, customer, sku, unit, hour, micros_hi, micros_lo, events)
		 SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6 FROM json_each(?2)`,
	)
		.bind(tenant, JSON.stringify(values))
		.run();
}

export interface AdjustmentRow {
	customer: string;
	sku: string;
	unit: string;
	/** The closed month, "2100-02". */
	period: string;
	/** ISO start of the month it was booked into. */
	booked: string;
	micros: bigint;
	events: number;
}

export async function seedAdjustments(tenant: string, rows: AdjustmentRow[]): Promise<void> {
	const values = rows.map((r) => [
		r.customer,
		r.sku,
		r.unit,
		r.period,
		r.booked,
		Number(r.micros / SPLIT),
		Number(r.micros % SPLIT),
		r.events,
	]);
	await env.DB.prepare(
		`INSERT INTO usage_adjustments (tenant, customer, sku, unit, period, booked, micros_hi, micros_lo, events)
		 SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7 FROM json_each(?2)`,
	)
		.bind(tenant, JSON.stringify(values))
		.run();
}

// ---- Exact decimal expectations ----

/** Integer micro-units as the exact decimal the API writes ("1.5", "0.000007", "12"). */
export function decimal(micros: bigint): string {
	const fraction = (micros % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "");
	return `${micros / 1_000_000n}${fraction ? `.${fraction}` : ""}`;
}

export interface UsageItem {
	customerId?: string | null;
	sku: string;
	unit: string;
	period: string;
	quantity: number;
	quantityDecimal: string;
	events: number;
}

export interface AdjustmentItem extends UsageItem {
	adjustmentFor: string;
}

/** A usage item of the JSON answer; `customerId` only when given (undefined leaves it out). */
export function item(period: string, sku: string, unit: string, micros: bigint, events: number, customerId?: string | null): UsageItem {
	const quantityDecimal = decimal(micros);
	return {
		...(customerId !== undefined && { customerId }),
		sku,
		unit,
		period,
		quantity: Number(quantityDecimal),
		quantityDecimal,
		events,
	};
}

export function adjustment(
	period: string,
	adjustmentFor: string,
	sku: string,
	unit: string,
	micros: bigint,
	events: number,
	customerId?: string | null,
): AdjustmentItem {
	return { ...item(period, sku, unit, micros, events, customerId), adjustmentFor };
}

/**
 * Sums ledger entries into expected items: one per (customer when `byCustomer`, bucket, sku,
 * unit), ordered as the API orders them (customer first, "no customer" first, then bucket, sku, unit).
 */
export function expectedItems(
	entries: { customer: string; sku: string; unit: string; at: string; micros: bigint; events: number }[],
	bucket: (at: string) => string,
	byCustomer: boolean,
): UsageItem[] {
	const sums = new Map<string, { customer: string; period: string; sku: string; unit: string; micros: bigint; events: number }>();
	for (const e of entries) {
		const period = bucket(e.at);
		const customer = byCustomer ? e.customer : "";
		const key = JSON.stringify([customer, period, e.sku, e.unit]);
		const sum = sums.get(key) ?? { customer, period, sku: e.sku, unit: e.unit, micros: 0n, events: 0 };
		sum.micros += e.micros;
		sum.events += e.events;
		sums.set(key, sum);
	}
	const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
	return [...sums.values()]
		.sort((a, b) => cmp(a.customer, b.customer) || cmp(a.period, b.period) || cmp(a.sku, b.sku) || cmp(a.unit, b.unit))
		.map((s) => item(s.period, s.sku, s.unit, s.micros, s.events, byCustomer ? (s.customer === "" ? null : s.customer) : undefined));
}

export const dayOf = (at: string) => `${at.slice(0, 10)}T00:00:00.000Z`;
export const monthOf = (at: string) => `${at.slice(0, 7)}-01T00:00:00.000Z`;

// ---- The answers ----

export interface CustomerUsageReport {
	tenant: string;
	from: string;
	to: string;
	granularity: string;
	customerId?: string;
	groupBy?: "customer";
	items: UsageItem[];
	adjustments: AdjustmentItem[];
	nextCursor?: string | null;
}

export function usageReport(tenant: TestTenant, query: string): Promise<CustomerUsageReport> {
	return getJson<CustomerUsageReport>(`/v1/usage?${query}`, tenant.readKey);
}

/** Every page of `groupBy=customer` for `query`, following nextCursor until it is null. */
export async function allPages(tenant: TestTenant, query: string, limit: number): Promise<CustomerUsageReport[]> {
	const pages: CustomerUsageReport[] = [];
	let cursor: string | null = null;
	do {
		const page = await usageReport(
			tenant,
			`${query}&groupBy=customer&limit=${limit}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`,
		);
		pages.push(page);
		cursor = page.nextCursor ?? null;
		if (pages.length > 10_000) throw new Error("paging does not end");
	} while (cursor !== null);
	return pages;
}

/** The distinct customers of a page, in the order they first appear (items, then adjustments). */
export function pageCustomers(page: CustomerUsageReport): (string | null)[] {
	return [...new Set([...page.items, ...page.adjustments].map((i) => i.customerId!))];
}

/** An answer's status and JSON body. */
export async function statusAndBody(path: string, key?: string): Promise<{ status: number; body: unknown }> {
	const response = await call(path, { key });
	return { status: response.status, body: await response.json() };
}

/** The 400 naming one field. */
export function invalid(path: string, message: string): { status: number; body: unknown } {
	return { status: 400, body: { error: { code: "invalid_request", message: `${path}: ${message}`, details: [{ path, message }] } } };
}

// ---- Determinism and exact statistics ----

/** A seeded PRNG of floats in [0, 1) (mulberry32). */
export const prng = mulberry32;

/** The q-quantile by the sketches' convention: the sorted value at rank ⌊q·(n − 1)⌋. */
export function exactQuantile(values: readonly number[], q: number): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(q * (sorted.length - 1))]!;
}

/** |estimate − exact| / exact. */
export function relativeError(estimate: number | null, exact: number): number {
	if (estimate === null) throw new Error("no estimate");
	return Math.abs(estimate - exact) / exact;
}
