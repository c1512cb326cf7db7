// Invoices: GET /v1/customers/:id/invoice?period= (one customer's, also as CSV), GET /v1/invoices
// (every subscribed customer's, in pages of at most 1,000), and the freeze a period's close runs:
// its invoices stored in D1, never changed again. A closed period answers from what was stored.
import type { IRequest } from "itty-router";
import { authenticate } from "../http/auth.js";
import { wantsCsv } from "../http/csv.js";
import { decodeCursor, encodeCursor, parseLimit } from "../http/cursor.js";
import { onlyQuery } from "../http/params.js";
import {
	insertInvoices,
	isPeriodClosed,
	storedInvoices,
	subscribedTimelines,
	subscriptionTimeline,
	type SubscriptionRow,
} from "../sinks/d1/billing.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { composeInvoice, invoiceCsv, type Invoice, type InvoicePart, type InvoiceStatus } from "./invoice.js";
import { loadPlans, planId } from "./plans.js";
import { measure, type Measure, type Quantities } from "./quantities.js";
import { customerParam, segmentsOf } from "./subscriptions.js";

/** Invoices per page of GET /v1/invoices, and per step of a freeze. */
export const INVOICE_PAGE = { default: 100, max: 1000 } as const;
/** Pages one close freezes; a tenant with more customers closes again to continue (closing is idempotent). */
const MAX_FREEZE_PAGES = 100;
const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

export interface BillingPeriod {
	period: string;
	from: string;
	to: string;
	/** The status an invoice of this period has unless it is closed. */
	open: Exclude<InvoiceStatus, "final">;
}

/** `YYYY-MM` or `current` (the current UTC month, a live preview). */
export function parsePeriod(text: string | null, now = Date.now()): BillingPeriod {
	if (text === null) throw invalidField("period", "is required: a month (YYYY-MM) or current");
	const current = new Date(now).toISOString().slice(0, 7);
	const period = text === "current" ? current : text;
	const bounds = monthBounds(period);
	if (!bounds) throw invalidField("period", "must be a month (YYYY-MM) or current");
	return { period, ...bounds, open: period >= current ? "preview" : "draft" };
}

/** A billing month's UTC bounds, [from, to) as ISO instants, or null when `period` is not YYYY-MM. */
export function monthBounds(period: string): { from: string; to: string } | null {
	const match = PERIOD.exec(period);
	if (!match) return null;
	const [year, month] = [Number(match[1]), Number(match[2])];
	return { from: new Date(Date.UTC(year, month - 1, 1)).toISOString(), to: new Date(Date.UTC(year, month, 1)).toISOString() };
}

/**
 * The invoices of customers over one period, from their subscription timelines: each customer's
 * segments in the period, measured per distinct range (most customers share the whole month, so
 * a page costs a few reads), then priced. Customers with no segment in the period get none.
 */
export async function computeInvoices(
	env: Env,
	tenant: string,
	period: BillingPeriod,
	status: InvoiceStatus,
	timelines: Map<string, SubscriptionRow[]>,
): Promise<Invoice[]> {
	const segments = new Map([...timelines].map(([customer, rows]) => [customer, segmentsOf(rows, period.from, period.to)]));
	const plans = await loadPlans(
		env.DB,
		tenant,
		[...segments.values()].flat().map((s) => s.plan),
	);
	// One read per distinct range; the month's first segment also takes the late usage booked at the month's start.
	const ranges = new Map<
		string,
		{ from: string; to: string; adjustments: boolean; customers: Set<string>; measures: Map<string, Measure> }
	>();
	const partsOf = new Map<string, { part: InvoicePart; range: string }[]>();
	for (const [customer, list] of segments) {
		const parts = list.flatMap((segment, i) => {
			const plan = plans.get(planId(segment.plan));
			if (!plan) throw new Error(`plan ${planId(segment.plan)} of ${customer} is missing`);
			const id = JSON.stringify([segment.from, segment.to, i === 0]);
			let range = ranges.get(id);
			if (!range)
				ranges.set(
					id,
					(range = { from: segment.from, to: segment.to!, adjustments: i === 0, customers: new Set(), measures: new Map() }),
				);
			range.customers.add(customer);
			for (const card of plan.plan.rateCards) {
				const meter = "meter" in card.target ? plan.meters[card.target.meter] : undefined;
				range.measures.set(JSON.stringify([card.target, meter?.id ?? null]), { target: card.target, ...(meter ? { meter } : {}) });
			}
			return [{ part: { segment: { ...segment, to: segment.to! }, plan }, range: id }];
		});
		if (parts.length > 0) partsOf.set(customer, parts);
	}
	const measured = new Map<string, Quantities>();
	await Promise.all(
		[...ranges].map(async ([id, range]) => {
			const adjustmentsFrom = range.adjustments ? period.from : null;
			measured.set(
				id,
				await measure(env, tenant, [...range.customers], [...range.measures.values()], range.from, range.to, adjustmentsFrom),
			);
		}),
	);
	return [...partsOf].map(([customer, parts]) =>
		composeInvoice({
			customer,
			period: period.period,
			status,
			from: period.from,
			to: period.to,
			parts: parts.map((p) => p.part),
			quantities: parts.map((p) => measured.get(p.range)!),
		}),
	);
}

function frozen(row: { invoice: string; frozen_at: string }): Invoice {
	return { ...(JSON.parse(row.invoice) as Invoice), frozenAt: row.frozen_at };
}

/** GET /v1/customers/:id/invoice?period=YYYY-MM|current */
export async function getInvoiceRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const url = new URL(request.url);
	onlyQuery(url, ["period"]);
	const customer = customerParam(request);
	const period = parsePeriod(url.searchParams.get("period"));
	const closed = await isPeriodClosed(env.DB, tenant, period.period);
	let invoice: Invoice | undefined;
	if (closed) {
		const [stored] = await storedInvoices(env.DB, tenant, period.period, [customer]);
		if (stored) invoice = frozen(stored);
	}
	if (!invoice) {
		const timeline = await subscriptionTimeline(env.DB, tenant, customer);
		[invoice] = await computeInvoices(env, tenant, period, closed ? "final" : period.open, new Map([[customer, timeline]]));
	}
	if (!invoice) throw new ApiError(404, `Customer ${customer} has no subscription in ${period.period}`);
	if (wantsCsv(request)) return new Response(invoiceCsv(invoice), { headers: { "content-type": "text/csv; charset=utf-8" } });
	return json({ tenant, ...invoice });
}

/** The next page of subscribed customers' timelines after `after`, and whether another page follows. */
async function timelinePage(
	env: Env,
	tenant: string,
	period: BillingPeriod,
	after: string | null,
	limit: number,
): Promise<{ timelines: Map<string, SubscriptionRow[]>; more: boolean }> {
	const rows = await subscribedTimelines(env.DB, tenant, period.from, period.to, after, limit + 1);
	const timelines = new Map<string, SubscriptionRow[]>();
	for (const row of rows) {
		const list = timelines.get(row.customer);
		if (list) list.push(row);
		else timelines.set(row.customer, [row]);
	}
	const more = timelines.size > limit;
	if (more) timelines.delete([...timelines.keys()].at(-1)!);
	return { timelines, more };
}

/** GET /v1/invoices?period=&limit=&cursor=: every subscribed customer's invoice, by customer id. */
export async function listInvoicesRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const url = new URL(request.url);
	onlyQuery(url, ["period", "limit", "cursor"]);
	const period = parsePeriod(url.searchParams.get("period"));
	const limit = parseLimit(url.searchParams.get("limit"), INVOICE_PAGE);
	const cursor = url.searchParams.get("cursor");
	const closed = await isPeriodClosed(env.DB, tenant, period.period);
	const { timelines, more } = await timelinePage(env, tenant, period, cursor === null ? null : decodeCursor(cursor), limit);
	const stored = closed ? await storedInvoices(env.DB, tenant, period.period, [...timelines.keys()]) : [];
	for (const row of stored) timelines.delete(row.customer);
	const computed = await computeInvoices(env, tenant, period, closed ? "final" : period.open, timelines);
	const invoices = [...stored.map(frozen), ...computed].sort((a, b) => (a.customerId < b.customerId ? -1 : 1));
	const nextCursor = more && invoices.length > 0 ? encodeCursor(invoices.at(-1)!.customerId) : null;
	return json({ tenant, period: period.period, status: closed ? "final" : period.open, invoices, nextCursor });
}

/**
 * Stores a closed period's invoices, page by page; an invoice already stored keeps its first
 * version. Returns how many were stored by this call and whether every customer has one now.
 */
export async function freezeInvoices(env: Env, tenant: string, periodText: string): Promise<{ stored: number; complete: boolean }> {
	const period = parsePeriod(periodText);
	const now = new Date().toISOString();
	let after: string | null = null;
	let stored = 0;
	for (let page = 0; page < MAX_FREEZE_PAGES; page++) {
		const { timelines, more } = await timelinePage(env, tenant, period, after, INVOICE_PAGE.max);
		const invoices = await computeInvoices(env, tenant, period, "final", timelines);
		const rows = invoices.map((invoice) => ({
			customer: invoice.customerId,
			currency: invoice.currency,
			total: invoice.total,
			invoice: JSON.stringify(invoice),
		}));
		stored += await insertInvoices(env.DB, tenant, period.period, rows, now);
		if (!more) return { stored, complete: true };
		after = [...timelines.keys()].at(-1)!;
	}
	return { stored, complete: false };
}
