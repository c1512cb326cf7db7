// The browser test's plumbing: a tenant seeded through the public API, the API's own answers, and
// the dashboard's number formats (src/dashboard/public/format.js) in the test's locale, so the test
// can assert the exact strings the page should show.
import { expect, vi } from "vitest";
import type { LocalPipeline, TenantKeys } from "../../src/scripts/local-pipeline";

/** The browser context's locale; the page formats with the browser's locale. */
export const LOCALE = "en-US";

const HOUR = 3_600_000;
const DAY = 86_400_000;

export const format = {
	count: (n: number) => new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 }).format(n),
	decimal: (text: string) => new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 6 }).format(text as unknown as number),
	rate: (r: number | null) =>
		r === null
			? "—"
			: new Intl.NumberFormat(LOCALE, { style: "percent", minimumFractionDigits: 0, maximumFractionDigits: 2 }).format(r),
	ms: (ms: number | null) =>
		ms === null
			? "—"
			: new Intl.NumberFormat(LOCALE, { style: "unit", unit: "millisecond", unitDisplay: "short", maximumFractionDigits: 1 }).format(
					ms,
				),
	money: (amountDecimal: string, currency: string) =>
		new Intl.NumberFormat(LOCALE, { style: "currency", currency }).format(amountDecimal as unknown as number),
};

export interface Point {
	start: string;
	end: string;
	value: number | null;
}

export interface TimeseriesAnswer {
	series: { key: Record<string, string | null>; points: Point[] }[];
}

export interface Invoice {
	customerId: string;
	currency: string;
	totalDecimal: string;
}

export interface UsageItem {
	customerId: string | null;
	sku: string;
	unit: string;
	quantityDecimal: string;
}

export async function getJson<T>(pipeline: LocalPipeline, path: string, key: string): Promise<T> {
	const response = await pipeline.call(path, { key });
	if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
	return (await response.json()) as T;
}

async function send(pipeline: LocalPipeline, method: string, path: string, key: string, body: unknown): Promise<void> {
	const response = await pipeline.call(path, { method, key, body: JSON.stringify(body) });
	if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
}

/** The seeded events, counted per time: now, 3 h ago, 30 h ago, 3 days ago, 20 days ago. */
export const SEEDED = { total: 22 };

/**
 * A meter, two plans in two currencies, two subscribed customers, and 22 events spread over the
 * last 20 days (with users, customers, routes, statuses, durations, countries and usage); then
 * waits until the aggregator has counted all of them and flushes.
 */
export async function seedTenant(pipeline: LocalPipeline, tenant: TenantKeys): Promise<void> {
	const now = Date.now();
	const monthStart = new Date(Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1)).toISOString();
	// Meters count events ingested after they exist: first the meter, then the events.
	await send(pipeline, "POST", "/v1/meters", tenant.readKey, {
		slug: "api_tokens",
		eventType: "api_call",
		aggregation: "SUM",
		valueProperty: "tokens",
		description: "Tokens per API call",
	});
	await send(pipeline, "POST", "/v1/plans", tenant.readKey, {
		key: "starter",
		currency: "USD",
		interval: "month",
		flatFee: "10",
		rateCards: [
			{ meter: "api_tokens", price: { model: "unit", amount: "0.01" } },
			{ sku: "storage", unit: "GB", price: { model: "unit", amount: "0.25" }, freeQuantity: "10" },
		],
	});
	await send(pipeline, "POST", "/v1/plans", tenant.readKey, {
		key: "pro",
		currency: "EUR",
		interval: "month",
		flatFee: "49.5",
		rateCards: [{ sku: "tokens", unit: "token", price: { model: "unit", amount: "0.001" } }],
	});
	await send(pipeline, "PUT", "/v1/customers/acme/subscription", tenant.readKey, { plan: "starter", startAt: monthStart });
	await send(pipeline, "PUT", "/v1/customers/globex/subscription", tenant.readKey, { plan: "pro", startAt: monthStart });

	const recent = now - 20_000;
	const events: Record<string, unknown>[] = [];
	for (let i = 0; i < 10; i++) {
		events.push({
			event: "api_call",
			timestamp: recent,
			userId: `u${(i % 4) + 1}`,
			customerId: i < 6 ? "acme" : "globex",
			route: i % 2 === 0 ? "/v1/items/:id" : "/v1/search",
			country: i < 5 ? "DE" : "US",
			properties: { tokens: 100 + i },
			performance: { duration: 20 + i * 10, statusCode: i === 3 || i === 7 ? 500 : i === 5 ? 404 : 200 },
			usage: { sku: "tokens", quantity: 100 + i * 0.5, unit: "token" },
		});
	}
	for (const user of ["u1", "u5", "u6", "u7"]) {
		events.push({
			event: "page_view",
			timestamp: recent,
			userId: user,
			customerId: "acme",
			route: "/pricing",
			country: "FR",
			usage: { sku: "storage", quantity: "5.5", unit: "GB" },
		});
	}
	for (let i = 0; i < 3; i++) {
		events.push({
			event: "api_call",
			timestamp: now - 3 * HOUR,
			userId: "u8",
			route: "/v1/items/:id",
			country: "DE",
			performance: { duration: 300, statusCode: 200 },
		});
	}
	for (let i = 0; i < 2; i++) {
		events.push({
			event: "api_call",
			timestamp: now - 30 * HOUR,
			userId: "u2",
			route: "/v1/search",
			country: "US",
			performance: { duration: 900, statusCode: 503 },
		});
	}
	events.push({ event: "signup", timestamp: now - 3 * DAY, userId: "u9", country: "GB" });
	events.push({ event: "signup", timestamp: now - 3 * DAY, userId: "u10", country: "GB" });
	events.push({ event: "signup", timestamp: now - 20 * DAY, userId: "u11", country: "GB" });
	expect(events).toHaveLength(SEEDED.total);
	await send(pipeline, "POST", "/v1/events", tenant.writeKey, { events });

	const from = new Date(now - 31 * DAY).toISOString();
	const to = new Date(now + DAY).toISOString();
	await vi.waitFor(
		async () => {
			const answer = await getJson<TimeseriesAnswer>(
				pipeline,
				`/v1/query/timeseries?metric=count&interval=day&from=${from}&to=${to}`,
				tenant.readKey,
			);
			expect(sum(answer.series[0]!.points)).toBe(SEEDED.total);
		},
		{ timeout: 30_000, interval: 200 },
	);
	await send(pipeline, "POST", "/v1/flush", tenant.writeKey, {});
}

export function sum(points: Point[]): number {
	return points.reduce((n, p) => n + (p.value ?? 0), 0);
}

/**
 * The page's filters as /v1/query/timeseries parameters: `event` and one of `route`, `status`,
 * `country` (`none`: the events without one).
 */
export type Filter = Partial<Record<"event" | "route" | "status" | "country", string>>;

/** The range the page shows (its data attributes), as the API's query parameters. */
export interface PageRange {
	from: string;
	to: string;
	interval: string;
}

/**
 * The stat-card strings for a range and filter, from the API: events and the error rate over the
 * range's windows, p95 as the worst window's.
 */
export async function expectedStats(
	pipeline: LocalPipeline,
	key: string,
	range: PageRange,
	filter: Filter = {},
): Promise<{ events: string; errorRate: string; p95: string; eventCount: number }> {
	const query = (metric: string) => {
		const params = new URLSearchParams({ metric, interval: range.interval, from: range.from, to: range.to, ...filter });
		return getJson<TimeseriesAnswer>(pipeline, `/v1/query/timeseries?${params}`, key);
	};
	const [count, errors, p95] = await Promise.all([query("count"), query("errors"), query("duration_p95")]);
	const events = sum(count.series[0]!.points);
	const failed = sum(errors.series[0]!.points);
	const p95s = p95.series[0]!.points.map((p) => p.value).filter((v): v is number => v !== null);
	return {
		events: format.count(events),
		errorRate: format.rate(events === 0 ? null : failed / events),
		p95: format.ms(p95s.length === 0 ? null : Math.max(...p95s)),
		eventCount: events,
	};
}

/** DAU (current UTC day) and MAU (current UTC month) as the page shows them. */
export async function expectedUniques(pipeline: LocalPipeline, key: string, filter: Filter = {}): Promise<{ dau: string; mau: string }> {
	const now = new Date();
	const day = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
	const month = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
	const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
	const query = (interval: string, from: number, to: number) => {
		const params = new URLSearchParams({
			metric: "unique_users",
			interval,
			from: new Date(from).toISOString(),
			to: new Date(to).toISOString(),
			...filter,
		});
		return getJson<TimeseriesAnswer>(pipeline, `/v1/query/timeseries?${params}`, key);
	};
	const [dau, mau] = await Promise.all([query("day", day, day + DAY), query("month", month, next)]);
	return { dau: format.count(dau.series[0]!.points[0]!.value!), mau: format.count(mau.series[0]!.points[0]!.value!) };
}
