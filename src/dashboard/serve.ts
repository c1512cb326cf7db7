// GET /dashboard: the dashboard's static files (src/dashboard/public, Workers static assets) with
// the headers that make a page holding a read key safe: a strict Content-Security-Policy (no inline
// script, no third-party origin), nosniff, no referrer, no framing. The page reads only the public
// API, with the key the tenant pastes; the Worker never sees the key on these routes.
import { ApiError } from "../shared/errors.js";

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

/** /dashboard → the page; /dashboard/<file> → that file; anything else under it → 404. */
export async function serveDashboard(request: Request, env: Env): Promise<Response> {
	const url = new URL(request.url);
	const rest = url.pathname.replace(/^\/dashboard/, "");
	if (rest === "") return Response.redirect(new URL("/dashboard/", url).toString(), 301);
	const file = rest === "/" ? "/index.html" : rest;
	if (!/^\/[a-z0-9][a-z0-9._-]*\.(?:html|js|css|svg|png)$/i.test(file)) throw new ApiError(404, "Not found");
	const asset = await env.ASSETS.fetch(new Request(new URL(file, url.origin), { headers: { "accept-encoding": "identity" } }));
	if (asset.status !== 200) throw new ApiError(404, "Not found");
	const headers = new Headers(asset.headers);
	for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers.set(name, value);
	// The page changes with each release, and holds no secret: revalidate rather than cache for long.
	headers.set("cache-control", "no-cache");
	return new Response(asset.body, { status: 200, headers });
}
