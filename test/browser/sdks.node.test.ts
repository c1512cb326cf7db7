// The real browser SDKs: a page on its own origin loads posthog-js and @segment/analytics-next
// from their npm packages and sends to the local pipeline through every transport they use
// (fetch with a preflight, gzip and base64 bodies, sendBeacon); Chromium allows the cross-origin
// requests, the SDKs log no error, and every event is counted exactly once.
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startLocalPipeline, type LocalPipeline, type TenantKeys } from "../../src/scripts/local-pipeline";

const root = path.resolve(import.meta.dirname, "../..");
/** URL prefix → folder the page's static server serves it from. */
const STATIC: [string, string][] = [
	["/vendor/posthog-js/", path.join(root, "node_modules/posthog-js/dist")],
	["/vendor/analytics-next/", path.join(root, "node_modules/@segment/analytics-next/dist/umd")],
	["/", path.join(import.meta.dirname, "sdk-page")],
];
const TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8" };
const COUNT = 25;

let pipeline: LocalPipeline;
let site: Server;
let siteUrl: string;
let browser: Browser;

/** Serves the page and the SDK bundles, files only, nothing outside the folders above. */
function startSite(): Promise<Server> {
	const server = createServer(async (request, response) => {
		const pathname = new URL(request.url ?? "/", "http://site").pathname.replace(/^\/$/, "/index.html");
		const [prefix, folder] = STATIC.find(([prefix]) => pathname.startsWith(prefix))!;
		const file = path.join(folder, pathname.slice(prefix.length));
		if (!file.startsWith(folder + path.sep)) return void response.writeHead(404).end();
		try {
			const body = await readFile(file);
			response.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" }).end(body);
		} catch {
			response.writeHead(404).end();
		}
	});
	return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

beforeAll(async () => {
	[pipeline, site, browser] = await Promise.all([
		startLocalPipeline(),
		startSite(),
		chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] }),
	]);
	siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
});

afterAll(async () => {
	await browser?.close();
	await new Promise((resolve) => site?.close(resolve));
	await pipeline?.stop();
});

/** Counts per event name over the last and next hour, once `total` events are counted. */
async function settledCounts(tenant: TenantKeys, total: number): Promise<Record<string, number>> {
	const from = new Date(Date.now() - 3_600_000).toISOString();
	const to = new Date(Date.now() + 3_600_000).toISOString();
	let counts: Record<string, number> = {};
	await vi.waitFor(
		async () => {
			await pipeline.call("/v1/flush", { method: "POST", key: tenant.writeKey });
			const response = await pipeline.call(`/v1/stats?granularity=hour&from=${from}&to=${to}`, { key: tenant.readKey });
			const { items } = (await response.json()) as { items: { event: string; count: number }[] };
			counts = {};
			for (const item of items) counts[item.event] = (counts[item.event] ?? 0) + item.count;
			expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(total);
		},
		{ timeout: 30_000, interval: 250 },
	);
	return counts;
}

describe("posthog-js and @segment/analytics-next in Chromium", () => {
	it("send from another origin through every transport, and each event is counted exactly once", async () => {
		const tenant = await pipeline.createTenant("browser-sdks");
		// The tenant allows only the page's origin: the SDKs' requests pass the per-tenant check.
		const allow = await pipeline.call("/v1/settings/cors", {
			method: "PUT",
			key: tenant.readKey,
			body: JSON.stringify({ allowedOrigins: [siteUrl] }),
		});
		expect(allow.status).toBe(200);

		const context = await browser.newContext();
		const page = await context.newPage();
		const problems: string[] = [];
		const elsewhere: string[] = [];
		const sent: string[] = [];
		page.on("console", (message) => {
			if (message.type() === "error" || message.type() === "warning") problems.push(`${message.type()}: ${message.text()}`);
		});
		page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
		page.on("requestfailed", (request) =>
			problems.push(`failed: ${request.method()} ${request.url()} ${request.failure()?.errorText}`),
		);
		page.on("response", (response) => {
			const request = response.request();
			const url = new URL(request.url());
			if (url.origin !== pipeline.url) return;
			const type = (request.headers()["content-type"] ?? "-").split(";")[0];
			const route = url.pathname.replace(`/array/${tenant.writeKey}/`, "/array/:token/");
			sent.push(`${request.method()} ${route} ${request.resourceType()} ${type} ${response.status()}`);
		});
		// Only localhost exists here: anything else the SDKs try is recorded and refused.
		await page.route(
			(url) => url.hostname !== "127.0.0.1",
			(route) => {
				elsewhere.push(route.request().url());
				return route.abort();
			},
		);
		await page.goto(`${siteUrl}/`);
		const result = await page.evaluate((args) => (window as unknown as { sendAll(a: typeof args): Promise<unknown> }).sendAll(args), {
			pipeline: pipeline.url,
			posthogKey: tenant.writeKey,
			segmentKey: tenant.writeKey,
			count: COUNT,
		});
		expect(result).toEqual({ flags: { flags: [], errorsLoading: false }, segmentFailures: 0 });

		const expected = {
			$pageview: 1,
			ph_batched: COUNT,
			ph_instant: 1,
			ph_beacon: 1,
			ph_plain: COUNT,
			ph_plain_beacon: 1,
			$page: 1,
			"Seg Track": COUNT,
		};
		const total = Object.values(expected).reduce((a, b) => a + b, 0);
		const counted = await settledCounts(tenant, total).catch((err: Error) => {
			throw new Error(`${err.message}\nrequests: ${sent.join(", ")}\nconsole: ${problems.join(", ")}`);
		});
		expect(counted).toEqual(expected);
		// Nothing arrives late: a second look after another flush finds the same counts.
		await new Promise((resolve) => setTimeout(resolve, 1000));
		expect(await settledCounts(tenant, total)).toEqual(expected);

		// Each transport, once per kind: JSON and Basic-auth fetches passed a preflight, the beacons none.
		const kinds = [...new Set(sent.filter((line) => !line.startsWith("POST /v1/m ")))].sort();
		expect(kinds).toEqual([
			"GET /array/:token/config.js script - 200",
			"POST /e/ fetch application/json 200",
			"POST /e/ fetch text/plain 200",
			"POST /e/ ping application/x-www-form-urlencoded 200",
			"POST /e/ ping text/plain 200",
			"POST /flags/ fetch text/plain 200",
			"POST /v1/p fetch text/plain 200",
			"POST /v1/t fetch text/plain 200",
		]);
		expect({ problems, elsewhere }).toEqual({ problems: [], elsewhere: [] });
		await context.close();
	});
});
