// The dashboard test's page-driving fixture: one local pipeline and one Chromium page per file, and the helpers that drive and check it.
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect } from "vitest";
import { startLocalPipeline, type LocalPipeline, type TenantKeys } from "../../src/scripts/local-pipeline";
import {
	expectedStats,
	expectedUniques,
	type Filter,
	format,
	getJson,
	LOCALE,
	seedTenant,
	sum,
	type Invoice,
	type PageRange,
	type TimeseriesAnswer,
	type UsageItem,
} from "./helpers";

export const DESKTOP = { width: 1280, height: 900 };
export const POLL = { timeout: 15_000, interval: 100 };

// Set by useDashboardPage's beforeAll; ES module exports are live bindings, so importers see them.
export let pipeline: LocalPipeline;
export let tenant: TenantKeys;
let browser: Browser;
let context: BrowserContext;
export let page: Page;
/** Console errors and page errors over the whole run, with the phase they happened in. */
export const problems: { phase: string; text: string }[] = [];
let phase = "load";

/** Names the phase the console errors and page errors from now on happened in. */
export function setPhase(name: string): void {
	phase = name;
}

/** The page's document as the init script uses it: test/tsconfig.json, which checks this file too, has no DOM types. */
interface CspDocument {
	addEventListener(type: "securitypolicyviolation", listener: (e: { violatedDirective: string; blockedURI: string }) => void): void;
}

/** Starts the pipeline with a seeded tenant and Chromium with one page before the file's tests, and stops both after. */
export function useDashboardPage(): void {
	beforeAll(async () => {
		[pipeline, browser] = await Promise.all([
			startLocalPipeline(),
			chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] }),
		]);
		tenant = await pipeline.createTenant("dashboard");
		await seedTenant(pipeline, tenant);
		// Reduced motion: no transitions, so a screenshot after a color-scheme switch shows the new scheme.
		context = await browser.newContext({ viewport: DESKTOP, locale: LOCALE, timezoneId: "UTC", reducedMotion: "reduce" });
		// A CSP violation is also reported to the console by Chromium; this catches any the console misses.
		await context.addInitScript(() =>
			(globalThis as unknown as { document: CspDocument }).document.addEventListener("securitypolicyviolation", (e) =>
				console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`),
			),
		);
		page = await context.newPage();
		page.on("console", (message) => {
			if (message.type() === "error") problems.push({ phase, text: message.text() });
		});
		page.on("pageerror", (error) => problems.push({ phase, text: `pageerror: ${error.message}` }));
	});

	afterAll(async () => {
		await browser?.close();
		await pipeline?.stop();
	});
}

export const dashboardUrl = () => `${pipeline.url}/dashboard/`;

/** Runs `action` and waits for the page's next load to finish (data-loads goes up, data-state ready). */
export async function settle(action: () => Promise<unknown>): Promise<void> {
	const dashboard = page.getByTestId("dashboard");
	const before = Number((await dashboard.getAttribute("data-loads")) ?? "0");
	await action();
	await expect.poll(async () => Number(await dashboard.getAttribute("data-loads")), POLL).toBeGreaterThan(before);
	await expect.poll(() => dashboard.getAttribute("data-state"), POLL).toBe("ready");
}

export async function pageRange(): Promise<PageRange> {
	const label = page.getByTestId("range");
	return {
		from: (await label.getAttribute("data-from"))!,
		to: (await label.getAttribute("data-to"))!,
		interval: (await label.getAttribute("data-interval"))!,
	};
}

export const text = (testId: string) => page.getByTestId(testId).first().textContent();

/** Asserts the stat cards show the API's numbers for the page's current range (and filter). */
export async function expectStatsMatchApi(filter: Filter = {}): Promise<number> {
	const range = await pageRange();
	const expected = await expectedStats(pipeline, tenant.readKey, range, filter);
	expect(await text("stat-events")).toBe(expected.events);
	expect(await text("stat-error-rate")).toBe(expected.errorRate);
	expect(await text("stat-p95")).toBe(expected.p95);
	const uniques = await expectedUniques(pipeline, tenant.readKey, filter);
	expect(await text("stat-dau")).toBe(uniques.dau);
	expect(await text("stat-mau")).toBe(uniques.mau);
	return expected.eventCount;
}

/**
 * Asserts a top-N table shows the API's counts per value over the page's range (asked in one query
 * of the range's own windows; the page sums fewer, coarser windows), largest first.
 */
export async function expectTopMatchesApi(breakdown: string, filter: Filter = {}): Promise<void> {
	const range = await pageRange();
	const params = new URLSearchParams({ metric: "count", breakdown, interval: range.interval, from: range.from, to: range.to, ...filter });
	const answer = await getJson<TimeseriesAnswer>(pipeline, `/v1/query/timeseries?${params}`, tenant.readKey);
	const expected = answer.series
		.map((s) => ({ key: s.key[breakdown] ?? "", count: sum(s.points) }))
		.filter((row) => row.count > 0)
		.sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1))
		.slice(0, 10);
	const shown = await page
		.getByTestId(`top-${breakdown}-row`)
		.evaluateAll((trs) =>
			trs.map((tr) => ({ key: tr.getAttribute("data-key")!, count: tr.querySelector('[data-testid="top-count"]')!.textContent })),
		);
	expect(await page.getByTestId(`top-${breakdown}`).getAttribute("data-unavailable"), breakdown).toBeNull();
	expect(shown, breakdown).toEqual(expected.map((row) => ({ key: row.key, count: format.count(row.count) })));
}

/** Asserts the tables of `breakdowns` show the note, and no rows, while the page is filtered by `by`. */
export async function expectUnavailable(by: string, breakdowns: string[]): Promise<void> {
	for (const breakdown of breakdowns) {
		const table = page.getByTestId(`top-${breakdown}`);
		expect(await table.getAttribute("data-unavailable"), breakdown).toBe("true");
		expect(await table.getByTestId("top-unavailable").textContent()).toBe(
			`Breakdowns by ${breakdown} are not available while filtering by ${by}`,
		);
		expect(await page.getByTestId(`top-${breakdown}-row`).count(), breakdown).toBe(0);
	}
}

export async function openWithKey(key: string): Promise<void> {
	await page.getByTestId("key-input").fill(key);
	await page.getByTestId("key-submit").click();
}

/** Asserts the usage table shows the API's exact quantity per customer, SKU and unit (acme's storage is 22). */
export async function expectUsageMatchesApi(): Promise<void> {
	const usage = await getJson<{ items: UsageItem[] }>(
		pipeline,
		"/v1/usage?groupBy=customer&granularity=month&limit=1000",
		tenant.readKey,
	);
	expect(usage.items.length).toBeGreaterThan(0);
	for (const item of usage.items) {
		const cell = page.locator(
			`[data-testid="usage-cell"][data-customer="${item.customerId ?? ""}"][data-sku="${item.sku}"][data-unit="${item.unit}"]`,
		);
		expect(await cell.textContent()).toBe(format.decimal(item.quantityDecimal));
	}
	expect(await page.locator('[data-testid="usage-cell"][data-customer="acme"][data-sku="storage"]').textContent()).toBe("22");
}

/** Asserts the api_tokens meter shows the API's value per customer (acme and globex). */
export async function expectMeterMatchesApi(): Promise<void> {
	const meter = await getJson<{ data: { customerId: string | null; valueDecimal: string }[] }>(
		pipeline,
		"/v1/meters/api_tokens/query?groupBy=customerId",
		tenant.readKey,
	);
	expect(meter.data.map((d) => d.customerId)).toEqual(["acme", "globex"]);
	for (const cell of meter.data) {
		expect(
			await page.locator(`[data-testid="meter-cell"][data-meter="api_tokens"][data-customer="${cell.customerId}"]`).textContent(),
		).toBe(format.decimal(cell.valueDecimal));
	}
}

/** Asserts the invoice previews show the API's totals in their currencies (acme in USD, globex in EUR). */
export async function expectInvoicesMatchApi(): Promise<void> {
	const { invoices } = await getJson<{ invoices: Invoice[] }>(pipeline, "/v1/invoices?period=current", tenant.readKey);
	expect(invoices.map((i) => [i.customerId, i.currency])).toEqual([
		["acme", "USD"],
		["globex", "EUR"],
	]);
	for (const invoice of invoices) {
		expect(await page.locator(`[data-testid="invoice-total"][data-customer="${invoice.customerId}"]`).textContent()).toBe(
			format.money(invoice.totalDecimal, invoice.currency),
		);
	}
}
