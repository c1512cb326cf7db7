// GET /dashboard: the dashboard's static files (src/dashboard/public, bundled into the Worker by
// src/scripts/bundle-dashboard.mjs) with the headers that make a page holding a read key safe: a
// strict Content-Security-Policy (no inline script, no third-party origin), nosniff, no referrer,
// no framing. The page reads only the public
// API, with the key the tenant pastes; the Worker never sees the key on these routes.
import { ApiError } from "../shared/errors.js";
import bundled from "./files.generated.json";

interface DashboardFile {
	type: string;
	etag: string;
	body: string;
}

const FILES: Readonly<Record<string, DashboardFile>> = bundled;

export const DASHBOARD_CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self'",
	"img-src 'self' data:",
	"connect-src 'self'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
	"content-security-policy": DASHBOARD_CSP,
	"x-content-type-options": "nosniff",
	"referrer-policy": "no-referrer",
	"x-frame-options": "DENY",
	"cross-origin-opener-policy": "same-origin",
	"cross-origin-resource-policy": "same-origin",
};

/**
 * /dashboard → the page; /dashboard/<file> → that file; anything else under it → 404. A request
 * whose If-None-Match holds the file's ETag gets a 304: the page revalidates on every load.
 */
export function serveDashboard(request: Request): Response {
	const url = new URL(request.url);
	const rest = url.pathname.replace(/^\/dashboard/, "");
	if (rest === "") return Response.redirect(new URL("/dashboard/", url).toString(), 301);
	const name = rest === "/" ? "index.html" : rest.slice(1);
	const file = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
	if (file === undefined) throw new ApiError(404, "Not found");
	const headers = new Headers(SECURITY_HEADERS);
	// The page changes with each release, and holds no secret: revalidate rather than cache for long.
	headers.set("cache-control", "no-cache");
	headers.set("etag", file.etag);
	const known = request.headers.get("if-none-match");
	if (known !== null && known.split(",").some((tag) => tag.trim().replace(/^W\//, "") === file.etag))
		return new Response(null, { status: 304, headers });
	headers.set("content-type", file.type);
	return new Response(file.body, { status: 200, headers });
}
