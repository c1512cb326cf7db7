// GET /dashboard: the static files bundled into the Worker, each with the strict security headers
// and an ETag of its bytes (304 on a match), a redirect to the trailing slash, 404 for anything
// else, and uPlot byte-identical to its npm package.
import { describe, expect, it } from "vitest";
import indexHtml from "../../src/dashboard/public/index.html?raw";
import vendoredCss from "../../src/dashboard/public/uPlot.min.css?raw";
import vendoredJs from "../../src/dashboard/public/uPlot.iife.min.js?raw";
import packageCss from "uplot/dist/uPlot.min.css?raw";
import packageJs from "uplot/dist/uPlot.iife.min.js?raw";
import { call } from "../helpers";

const HEADERS = {
	"content-security-policy":
		"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"x-content-type-options": "nosniff",
	"referrer-policy": "no-referrer",
	"x-frame-options": "DENY",
	"cross-origin-opener-policy": "same-origin",
	"cross-origin-resource-policy": "same-origin",
	"cache-control": "no-cache",
};

function securityHeaders(response: Response): Record<string, string | null> {
	return Object.fromEntries(Object.keys(HEADERS).map((name) => [name, response.headers.get(name)]));
}

describe("GET /dashboard", () => {
	it("serves the page at /dashboard/ with the security headers, and no key needed", async () => {
		const response = await call("/dashboard/");
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toMatch(/^text\/html/);
		expect(securityHeaders(response)).toEqual(HEADERS);
		const html = await response.text();
		// No inline script or style: the CSP would block it.
		expect(html.match(/<script(?![^>]*\bsrc=)[^>]*>/g)).toBeNull();
		expect(html.match(/<style\b|\sstyle=/g)).toBeNull();
	});

	it("redirects /dashboard to /dashboard/", async () => {
		const response = await call("/dashboard", { redirect: "manual" });
		expect([response.status, response.headers.get("location")]).toEqual([301, "https://meterline.test/dashboard/"]);
	});

	it.each([
		["uPlot.iife.min.js", /^(?:text|application)\/javascript/],
		["uPlot.min.css", /^text\/css/],
	])("serves %s with its type and the same headers", async (file, type) => {
		const response = await call(`/dashboard/${file}`);
		expect(response.status).toBe(200);
		expect(response.headers.get("content-type")).toMatch(type);
		expect(securityHeaders(response)).toEqual(HEADERS);
	});

	it.each(["/dashboard/missing.js", "/dashboard/../wrangler.toml", "/dashboard/sub/index.html", "/dashboard/.env"])(
		"answers 404 for %s",
		async (path) => {
			const response = await call(path);
			expect([response.status, await response.json()]).toEqual([404, { error: { code: "not_found", message: "Not found" } }]);
		},
	);

	it("serves each file byte for byte with an ETag of its bytes, and 304 when the client has it", async () => {
		const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(indexHtml)));
		const etag = `"${[...digest]
			.map((b) => b.toString(16).padStart(2, "0"))
			.join("")
			.slice(0, 32)}"`;
		const page = await call("/dashboard/");
		expect([page.headers.get("etag"), await page.text()]).toEqual([etag, indexHtml]);
		const script = await call("/dashboard/uPlot.iife.min.js");
		expect([script.headers.get("content-type"), await script.text()]).toEqual(["text/javascript; charset=utf-8", vendoredJs]);
		for (const known of [etag, `W/${etag}`, `"other", ${etag}`]) {
			const again = await call("/dashboard/", { headers: { "if-none-match": known } });
			expect([again.status, again.headers.get("etag"), await again.text()]).toEqual([304, etag, ""]);
			expect(securityHeaders(again)).toEqual(HEADERS);
		}
		const stale = await call("/dashboard/", { headers: { "if-none-match": '"other"' } });
		expect([stale.status, (await stale.text()).length]).toEqual([200, indexHtml.length]);
	});

	it("answers 404 for names only an object's prototype has", async () => {
		for (const path of ["/dashboard/constructor", "/dashboard/__proto__", "/dashboard/toString"]) {
			expect((await call(path)).status).toBe(404);
		}
	});

	it("answers 405 for POST", async () => {
		expect((await call("/dashboard/", { method: "POST" })).status).toBe(405);
	});

	it("ships uPlot exactly as its npm package has it", () => {
		expect([vendoredJs.length, vendoredCss.length]).toEqual([packageJs.length, packageCss.length]);
		expect(vendoredJs === packageJs && vendoredCss === packageCss).toBe(true);
	});
});
