// GET /v1/usage: exact usage per sku and bucket, D1's rollups merged with what the aggregator has
// not flushed yet, plus adjustments: late usage for closed months, booked into the month it arrived
// in. Optionally for one customer, or per customer in pages (a tenant may bill 100,000 of them).
import { ADJUSTMENT_ROLLUP, USAGE_ROLLUP } from "../sinks/rollups.js";
import { FIELD_LIMITS } from "../event/model.js";
import { authenticate } from "../http/auth.js";
import { formatMicros } from "../event/quantity.js";
import { decodeCursor, encodeCursor, parseLimit } from "../http/cursor.js";
import { csvText as csv, wantsCsv } from "../http/csv.js";
import { invalidField, json } from "../shared/errors.js";
import { compareCodePoints } from "../shared/order.js";
import { liveReports, type LiveQuery, type ReportRow } from "./live.js";
import { currentUtcMonth, parseRange, periodStart } from "./range.js";

/** Customers per page of `groupBy=customer`: the default, and the most one page may ask for. */
export const CUSTOMER_PAGE = { default: 100, max: 1000 } as const;

interface UsageQuery {
	customerId: string | null;
	byCustomer: boolean;
	limit: number;
	after: string | null;
}

function parseUsageQuery(url: URL): UsageQuery {
	const params = url.searchParams;
	const customerId = params.get("customerId");
	const { min, max } = FIELD_LIMITS.customerId;
	if (customerId !== null && (customerId.length < min || customerId.length > max))
		throw invalidField("customerId", `must be ${min}-${max} characters`);
	const groupBy = params.get("groupBy");
	if (groupBy !== null && groupBy !== "customer") throw invalidField("groupBy", 'must be "customer" or absent');
	const byCustomer = groupBy === "customer";
	if (byCustomer && customerId !== null) throw invalidField("groupBy", "cannot be combined with customerId, which names one customer");
	for (const name of ["limit", "cursor"]) if (!byCustomer && params.has(name)) throw invalidField(name, "pages only groupBy=customer");
	const limit = parseLimit(params.get("limit"), CUSTOMER_PAGE);
	const cursor = params.get("cursor");
	return { customerId, byCustomer, limit, after: cursor === null ? null : decodeCursor(cursor) };
}

export async function getUsage(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const url = new URL(request.url);
	const range = parseRange(url, ["hour", "day", "month"], { granularity: "day", range: currentUtcMonth }, [
		"customerId",
		"groupBy",
		"limit",
		"cursor",
	]);
	const query = parseUsageQuery(url);
	const options = (spec: typeof USAGE_ROLLUP): LiveQuery => {
		const keys = spec.keys.filter((key) => key !== spec.time && (query.byCustomer || key !== "customer"));
		const base: LiveQuery = { spec, keys };
		if (query.customerId !== null) base.where = { customer: query.customerId };
		if (query.byCustomer)
			base.page = { key: "customer", after: query.after, limit: query.limit, among: [USAGE_ROLLUP, ADJUSTMENT_ROLLUP] };
		return base;
	};
	const {
		reports: [usage, adjustments],
		nextCursor,
	} = await liveReports(env, tenant, [options(USAGE_ROLLUP), options(ADJUSTMENT_ROLLUP)], range.from, range.to, range.granularity);
	const itemOf = (row: ReportRow) => ({
		...(query.byCustomer ? { customerId: row.customer === "" ? null : (row.customer as string) } : {}),
		sku: row.sku as string,
		unit: row.unit as string,
		period: periodStart(row.bucket),
		quantity: formatMicros(row.micros as string),
		events: row.events as number,
	});
	const items = sortByCustomer(usage!.map(itemOf));
	// The key order of an adjustment puts adjustmentFor before the quantity, as before.
	const adjusted = sortByCustomer(
		adjustments!.map((row) => {
			const { quantity, events, ...item } = itemOf(row);
			return { ...item, adjustmentFor: row.period as string, quantity, events };
		}),
	);
	const next = nextCursor === null ? null : encodeCursor(nextCursor);
	if (wantsCsv(request)) return usageCsv(items, adjusted, query.byCustomer, next);
	// `quantityDecimal` is the exact sum; the JSON number beside it is exact up to 15 significant digits.
	const exact = <T extends { quantity: string }>(item: T) => ({
		...item,
		quantity: Number(item.quantity),
		quantityDecimal: item.quantity,
	});
	const scope = query.customerId !== null ? { customerId: query.customerId } : query.byCustomer ? { groupBy: "customer" } : {};
	const paging = query.byCustomer ? { nextCursor: next } : {};
	return json({ tenant, ...range, ...scope, items: items.map(exact), adjustments: adjusted.map(exact), ...paging });
}

/** Per customer, a page is ordered by customer first ("no customer" first), then as before. */
function sortByCustomer<T extends { customerId?: string | null }>(items: T[]): T[] {
	if (items.length === 0 || !("customerId" in items[0]!)) return items;
	return items
		.map((item, i) => ({ item, i }))
		.sort((a, b) => {
			return compareCodePoints(a.item.customerId ?? "", b.item.customerId ?? "") || a.i - b.i;
		})
		.map(({ item }) => item);
}

type UsageItem = {
	customerId?: string | null;
	period: string;
	sku: string;
	unit: string;
	quantity: string;
	events: number;
	adjustmentFor?: string;
};

/** The same report as CSV; per customer, with a customer_id column and the next page's cursor in a header. */
function usageCsv(items: UsageItem[], adjusted: UsageItem[], byCustomer: boolean, next: string | null): Response {
	const header = ["period", "sku", "unit", "quantity", "events", "adjustment_for", ...(byCustomer ? ["customer_id"] : [])];
	const line = (i: UsageItem) =>
		[
			i.period,
			csv(i.sku),
			csv(i.unit),
			i.quantity,
			i.events,
			i.adjustmentFor ?? "",
			...(byCustomer ? [csv(i.customerId ?? "")] : []),
		].join(",");
	const lines = [header.join(","), ...items.map(line), ...adjusted.map(line)];
	const headers: Record<string, string> = { "content-type": "text/csv; charset=utf-8" };
	if (byCustomer && next !== null) headers["x-next-cursor"] = next;
	return new Response(lines.join("\r\n") + "\r\n", { headers });
}
