// The dashboard in real Chromium against the pipeline running locally (workerd through wrangler):
// the page shows exactly what the public API answers, its range picker and click-to-filter change
// the numbers as the API says, keys and errors are handled as documented, and nothing on the page
// breaks its strict Content-Security-Policy. The pipeline, browser and page helpers are in page.ts.
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { format, getJson, type TimeseriesAnswer } from "./helpers";
import {
	dashboardUrl,
	DESKTOP,
	expectInvoicesMatchApi,
	expectMeterMatchesApi,
	expectStatsMatchApi,
	expectTopMatchesApi,
	expectUnavailable,
	expectUsageMatchesApi,
	openWithKey,
	page,
	pageRange,
	pipeline,
	POLL,
	problems,
	setPhase,
	settle,
	tenant,
	text,
	useDashboardPage,
} from "./page";

const root = path.resolve(import.meta.dirname, "../..");
const screenshots = path.join(import.meta.dirname, "screenshots");
const AUTH_MESSAGE = "That key was not accepted (wrong key, or a write key: paste the read key)";

useDashboardPage();

describe("the dashboard", () => {
	it("is served at /dashboard/ with its CSP, and uPlot byte-identical to the package's", async () => {
		const response = await pipeline.call("/dashboard/");
		expect(response.status).toBe(200);
		expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
		expect(await response.text()).toContain('src="dashboard.js"');
		for (const file of ["uPlot.iife.min.js", "uPlot.min.css"]) {
			const served = Buffer.from(await (await pipeline.call(`/dashboard/${file}`)).arrayBuffer());
			expect(served.equals(readFileSync(path.join(root, "node_modules/uplot/dist", file))), file).toBe(true);
		}
	});

	it("refuses a wrong key and a write key with the error text, and keeps neither", async () => {
		setPhase("wrong-key");
		await page.goto(dashboardUrl());
		await page.getByTestId("connect").waitFor();
		await openWithKey("ml_r_notarealkeynotarealkeynotarealkey");
		await expect.poll(() => text("error-banner"), POLL).toBe(AUTH_MESSAGE);
		expect(await page.getByTestId("connect").isVisible()).toBe(true);

		await page.reload();
		await openWithKey(tenant.writeKey);
		await expect.poll(() => text("error-banner"), POLL).toBe(AUTH_MESSAGE);
		expect(await page.evaluate(() => sessionStorage.length + localStorage.length)).toBe(0);
		setPhase("run");
	});

	it("shows exactly the counts, unique users, error rate, usage and invoice totals the API answers", async () => {
		await page.reload();
		await settle(() => openWithKey(tenant.readKey));
		expect(await page.getByTestId("error-banner").isVisible()).toBe(false);
		expect(await text("tenant")).toBe(tenant.id);
		// The key stays in this tab's sessionStorage only, never in the URL.
		expect(page.url()).toBe(dashboardUrl());
		expect(await page.evaluate(() => [sessionStorage.getItem("meterline.readKey"), localStorage.length])).toEqual([tenant.readKey, 0]);

		// The default range: the last 24 hours, hourly. 14 events now and 3 from 3 h ago.
		expect((await pageRange()).interval).toBe("hour");
		expect(await expectStatsMatchApi()).toBe(17);
		expect(await page.getByTestId("events-empty").isVisible()).toBe(false);

		// The top-10 tables, as the API's breakdowns count them.
		for (const breakdown of ["event", "route", "status", "country"]) await expectTopMatchesApi(breakdown);

		// Usage per customer and SKU, exact.
		await expectUsageMatchesApi();
		// The meter, per customer.
		await expectMeterMatchesApi();
		// The invoice previews, in their currencies.
		await expectInvoicesMatchApi();

		// Pipeline health and the tenant's counters.
		const health = (await (await pipeline.call("/v1/health")).json()) as { status: string };
		expect(await text("health-status")).toBe(health.status);
		const metrics = await getJson<{ deadLettered: number; spilled: number }>(pipeline, "/v1/metrics", tenant.readKey);
		expect(await text("metric-dead-letters")).toBe(format.count(metrics.deadLettered));
		expect(await text("metric-spilled")).toBe(format.count(metrics.spilled));
	});

	it("changes the numbers with the range picker as the API says", async () => {
		await settle(() => page.getByTestId("range-1h").click());
		expect(await pageRange()).toMatchObject({ interval: "minute" });
		expect(await expectStatsMatchApi()).toBe(14);

		await settle(() => page.getByTestId("range-7d").click());
		expect((await pageRange()).interval).toBe("hour");
		expect(await expectStatsMatchApi()).toBe(21);
		await settle(() => page.getByTestId("interval-select").selectOption("day"));
		expect((await pageRange()).interval).toBe("day");
		expect(await expectStatsMatchApi()).toBe(21);

		await settle(() => page.getByTestId("range-30d").click());
		expect((await pageRange()).interval).toBe("day");
		expect(await expectStatsMatchApi()).toBe(22);
		for (const breakdown of ["event", "route", "status", "country"]) await expectTopMatchesApi(breakdown);

		// A custom range: the last 48 hours, by hour (with the 30 h old errors in it).
		await page.getByTestId("range-custom").click();
		const to = Date.now();
		const local = (ms: number) => new Date(ms).toISOString().slice(0, 16); // the context's time zone is UTC
		await page.getByTestId("custom-from").fill(local(to - 48 * 3_600_000));
		await page.getByTestId("custom-to").fill(local(to));
		await settle(() => page.getByTestId("custom-apply").click());
		expect((await pageRange()).interval).toBe("hour");
		expect(await expectStatsMatchApi()).toBe(19);

		await settle(() => page.getByTestId("range-24h").click());
		expect(await expectStatsMatchApi()).toBe(17);
	});

	it("filters the whole page to an event row chosen with Enter, and the chip clears it", async () => {
		const row = page.locator('[data-testid="top-event-row"][data-key="page_view"]');
		await row.getByRole("button").focus();
		await settle(() => page.keyboard.press("Enter"));
		expect(await text("filter-chip-text")).toBe("filter: event = page_view");
		expect(await expectStatsMatchApi({ event: "page_view" })).toBe(4);
		expect(await text("stat-error-rate")).toBe("0%");
		expect(await row.getAttribute("class")).toContain("selected");
		// The other tables are narrowed to the event too.
		expect(await page.getByTestId("top-route-row").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-key")))).toEqual([
			"/pricing",
		]);
		for (const breakdown of ["route", "status", "country"]) await expectTopMatchesApi(breakdown, { event: "page_view" });

		await settle(() => page.getByTestId("filter-clear").click());
		expect(await page.getByTestId("filter-chip").isVisible()).toBe(false);
		expect(await expectStatsMatchApi()).toBe(17);

		expect(await page.getByTestId("dimension-chip").isVisible()).toBe(false);
	});

	it("filters the whole page to a route, status or country row, with the other breakdowns marked unavailable", async () => {
		const row = (breakdown: string, key: string) => page.locator(`[data-testid="top-${breakdown}-row"][data-key="${key}"]`);

		// A route, clicked: the stats, DAU/MAU and the events table narrow to it, the route table keeps its rows.
		await settle(() => row("route", "/v1/search").click());
		expect(await text("dimension-chip-text")).toBe("filter: route = /v1/search");
		expect(await page.getByTestId("filter-chip").isVisible()).toBe(false);
		expect(await expectStatsMatchApi({ route: "/v1/search" })).toBe(5);
		expect(await row("route", "/v1/search").getAttribute("class")).toContain("selected");
		await expectTopMatchesApi("route");
		await expectTopMatchesApi("event", { route: "/v1/search" });
		await expectUnavailable("route", ["status", "country"]);

		// An event on top of it: both filters, and the route table narrowed to the event.
		await settle(() => row("event", "api_call").click());
		expect(await text("filter-chip-text")).toBe("filter: event = api_call");
		expect(await expectStatsMatchApi({ event: "api_call", route: "/v1/search" })).toBe(5);
		await expectTopMatchesApi("route", { event: "api_call" });
		await expectTopMatchesApi("event", { route: "/v1/search" });
		await expectUnavailable("route", ["status", "country"]);
		await page.mouse.move(0, 0);
		await page.screenshot({ path: path.join(screenshots, "dashboard-filtered.png"), fullPage: true });
		await settle(() => page.getByTestId("filter-clear").click());
		expect(await expectStatsMatchApi({ route: "/v1/search" })).toBe(5);
		await settle(() => page.getByTestId("dimension-clear").click());
		expect(await page.getByTestId("dimension-chip").isVisible()).toBe(false);
		expect(await expectStatsMatchApi()).toBe(17);
		for (const breakdown of ["event", "route", "status", "country"]) await expectTopMatchesApi(breakdown);

		// A status, then the events without one (status=none), which replaces it.
		await settle(() => row("status", "500").click());
		expect(await text("dimension-chip-text")).toBe("filter: status = 500");
		expect(await expectStatsMatchApi({ status: "500" })).toBe(2);
		expect(await text("stat-error-rate")).toBe("100%");
		await expectTopMatchesApi("event", { status: "500" });
		await expectUnavailable("status", ["route", "country"]);
		await settle(() => page.locator('[data-testid="top-status-row"][data-null="true"]').click());
		expect(await text("dimension-chip-text")).toBe("filter: status = (none)");
		expect(await expectStatsMatchApi({ status: "none" })).toBe(4);
		expect(await page.locator('[data-testid="top-status-row"][data-null="true"]').getAttribute("class")).toContain("selected");
		await expectTopMatchesApi("event", { status: "none" });
		await settle(() => page.getByTestId("dimension-clear").click());
		expect(await expectStatsMatchApi()).toBe(17);

		// A country, chosen with Enter.
		await row("country", "DE").getByRole("button").focus();
		await settle(() => page.keyboard.press("Enter"));
		expect(await text("dimension-chip-text")).toBe("filter: country = DE");
		expect(await expectStatsMatchApi({ country: "DE" })).toBe(8);
		await expectTopMatchesApi("event", { country: "DE" });
		await expectUnavailable("country", ["route", "status"]);
		await settle(() => page.getByTestId("dimension-clear").click());
		expect(await page.getByTestId("dimension-chip").isVisible()).toBe(false);
		expect(await expectStatsMatchApi()).toBe(17);
		for (const breakdown of ["event", "route", "status", "country"]) await expectTopMatchesApi(breakdown);
	});

	it("in live mode shows the events of the last minutes as the API counts them", async () => {
		await page.getByTestId("live-toggle").click();
		await page.getByTestId("live-status").waitFor();
		await expect
			.poll(async () => {
				const minute = Date.parse((await page.getByTestId("live-status").getAttribute("data-minute"))!);
				const answer = await getJson<TimeseriesAnswer>(
					pipeline,
					`/v1/query/timeseries?metric=count&interval=minute&from=${new Date(minute - 60_000).toISOString()}&to=${new Date(minute + 60_000).toISOString()}`,
					tenant.readKey,
				);
				const [last, current] = answer.series[0]!.points.map((p) => format.count(p.value!));
				return [await text("live-last-minute"), await text("live-this-minute")].join() === [last, current].join();
			}, POLL)
			.toBe(true);
		await page.getByTestId("live-toggle").click();
		expect(await page.getByTestId("live-status").isVisible()).toBe(false);
		await expect.poll(() => page.getByTestId("dashboard").getAttribute("data-state"), POLL).toBe("ready");
	});

	it("looks right in light and dark, and fits 375 px without scrolling sideways", async () => {
		await page.mouse.move(0, 0);
		await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
		for (const colorScheme of ["light", "dark"] as const) {
			await page.emulateMedia({ colorScheme });
			await page.evaluate(() => document.fonts.ready);
			await page.screenshot({ path: path.join(screenshots, `dashboard-${colorScheme}.png`), fullPage: true });
		}
		await page.emulateMedia({ colorScheme: "light" });
		await page.setViewportSize({ width: 375, height: 812 });
		await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth), POLL).toBeLessThanOrEqual(375);
		await page.screenshot({ path: path.join(screenshots, "dashboard-mobile.png"), fullPage: true });
		await page.setViewportSize(DESKTOP);
	});

	it("says when it cannot reach the API", async () => {
		setPhase("offline");
		await page.route("**/v1/**", (route) => route.abort("connectionrefused"));
		await page.getByTestId("refresh").click();
		await expect.poll(() => text("error-banner"), POLL).toBe(`Cannot reach the Meterline API at ${pipeline.url}`);
		await page.unroute("**/v1/**");
		setPhase("run");
		await settle(() => page.getByTestId("refresh").click());
		expect(await page.getByTestId("error-banner").isVisible()).toBe(false);
	});

	it("tells a tenant without data what to send, with the origin and a placeholder key", async () => {
		const empty = await pipeline.createTenant("dashboard-empty");
		await page.getByTestId("forget-key").click();
		await page.getByTestId("connect").waitFor();
		expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
		await settle(() => openWithKey(empty.readKey));
		expect(await text("tenant")).toBe(empty.id);
		expect(await page.getByTestId("events-empty").isVisible()).toBe(true);
		expect(await text("stat-events")).toBe("0");
		expect(await text("stat-error-rate")).toBe("—");
		expect(await text("stat-p95")).toBe("—");
		const curl = (await text("events-curl"))!;
		expect(curl).toContain(`curl -X POST ${pipeline.url}/v1/events`);
		expect(curl).toContain('"Authorization: Bearer $WRITE_KEY"');
		for (const id of ["usage-empty", "meters-empty", "invoices-empty"]) expect(await page.getByTestId(id).isVisible(), id).toBe(true);
		const html = await page.content();
		for (const key of [empty.readKey, empty.writeKey, tenant.readKey]) expect(html).not.toContain(key);

		// The curl the page shows works as printed.
		const command = curl.replace("$WRITE_KEY", empty.writeKey);
		const body = /-d '(.*)'$/s.exec(command)![1]!;
		const response = await pipeline.call("/v1/events", { method: "POST", key: empty.writeKey, body });
		expect(response.status).toBe(202);
	});

	it("logged no console error, page error or CSP violation", () => {
		// Chromium logs every refused request: only the expected 401/403 and the aborted requests may appear.
		const unexpected = problems.filter(
			(p) =>
				!(p.phase === "wrong-key" && /status of 40[13]/.test(p.text)) &&
				!(p.phase === "offline" && /net::ERR_CONNECTION_REFUSED/.test(p.text)),
		);
		expect(unexpected).toEqual([]);
	});
});
