// GET /dashboard: the static files from Workers assets, each with the strict security headers, a
// redirect to the trailing slash, 404 for anything else, and uPlot byte-identical to its npm package.
import { describe, expect, it } from "vitest";
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

	it("answers 405 for POST", async () => {
		expect((await call("/dashboard/", { method: "POST" })).status).toBe(405);
	});

	it("ships uPlot exactly as its npm package has it", () => {
		expect([vendoredJs.length, vendoredCss.length]).toEqual([packageJs.length, packageCss.length]);
		expect(vendoredJs === packageJs && vendoredCss === packageCss).toBe(true);
	});
});
