// CORS for the routes a browser may call (write-key ingest and PostHog's config answers): a
// permissive preflight, then each tenant's allowed origins checked on the request itself.
import { findAllowedOrigins, putAllowedOrigins } from "../sinks/d1/cors.js";
import { ApiError, toErrorResponse } from "../shared/errors.js";
import { TtlCache } from "../shared/ttl-cache.js";
import { KEY_CACHE_TTL_MS } from "./auth.js";

/** The request headers the browser SDKs send: Segment's Basic key and retry count, and gzip. */
export const CORS_ALLOW_HEADERS = "authorization, content-type, content-encoding, x-retry-count";
/** How long a browser may reuse a preflight answer: 2 h, Chrome's own cap. */
export const CORS_MAX_AGE_S = 7200;
/** How long this isolate trusts a tenant's allowed origins without asking D1, as long as a verified key. */
export const ORIGINS_CACHE_TTL_MS = KEY_CACHE_TTL_MS;

/** scheme://host[:port] and nothing else: no path (not even "/"), query, fragment or credentials. */
const ORIGIN_SHAPE = /^https?:\/\/[^/?#@\\\s]+$/i;

/** The origin as a browser's Origin header spells it (lowercase host, no default port), or null if it is not one. */
export function normalizeOrigin(value: unknown): string | null {
	if (typeof value !== "string" || value.length > 300 || !ORIGIN_SHAPE.test(value)) return null;
	try {
		return new URL(value).origin;
	} catch {
		return null;
	}
}

/** A CORS preflight: OPTIONS with Origin and Access-Control-Request-Method. A bare OPTIONS is not one. */
export function isPreflight(request: Request): boolean {
	return request.method === "OPTIONS" && request.headers.has("origin") && request.headers.has("access-control-request-method");
}

/**
 * The preflight answer. It carries no key, so it cannot know the tenant: it allows the asking
 * origin, and the tenant's list is checked on the request that follows.
 */
export function preflight(request: Request, methods: readonly string[]): Response {
	return new Response(null, {
		status: 204,
		headers: {
			"access-control-allow-origin": request.headers.get("origin")!,
			"access-control-allow-methods": methods.join(", "),
			"access-control-allow-headers": CORS_ALLOW_HEADERS,
			"access-control-max-age": String(CORS_MAX_AGE_S),
			vary: "Origin",
		},
	});
}

/** The 403 for an origin the tenant does not allow: the one answer of a CORS route without CORS headers. */
export class OriginNotAllowed extends ApiError {
	constructor() {
		super(403, "This origin may not send with this tenant's write key", {
			details: [{ path: "origin", message: "is not in the tenant's allowed origins" }],
		});
	}
}

/**
 * Wraps a browser route's handler: its answer, errors included so the page can read them, gets
 * Access-Control-Allow-Origin for the request's Origin. A refused origin gets none.
 */
export function withCors<R extends Request, A extends unknown[]>(
	handler: (request: R, ...rest: A) => Promise<Response> | Response,
): (request: R, ...rest: A) => Promise<Response> {
	return async (request, ...rest) => {
		let response: Response;
		try {
			response = await handler(request, ...rest);
		} catch (err) {
			if (err instanceof OriginNotAllowed) throw err;
			response = toErrorResponse(err);
		}
		const out = new Response(response.body, response);
		out.headers.append("vary", "Origin");
		const origin = request.headers.get("origin");
		if (origin !== null) {
			out.headers.set("access-control-allow-origin", origin);
			// The SDKs read Retry-After to pace their retries after a 429 or 503.
			out.headers.set("access-control-expose-headers", "retry-after");
		}
		return out;
	};
}

/** Tenants' allowed origins as this isolate last read them, so a browser's events do not wait on D1 each time. */
const cached = new TtlCache<readonly string[] | null>(ORIGINS_CACHE_TTL_MS);

/** The tenant's allowed origins (null: any), from this isolate's cache for up to ORIGINS_CACHE_TTL_MS. */
async function allowedOrigins(env: Env, tenant: string): Promise<readonly string[] | null> {
	const hit = cached.get(tenant);
	if (hit !== undefined) return hit;
	let origins: string[] | null;
	try {
		origins = await findAllowedOrigins(env.DB, tenant);
	} catch (err) {
		console.error("allowed origins lookup failed", { tenant }, err);
		// A list read a minute ago beats refusing every browser event while D1 is away.
		const stale = cached.stale(tenant);
		if (stale !== undefined) return stale;
		throw new ApiError(503, "Origin check is unavailable; retry shortly", { headers: { "retry-after": "5" } });
	}
	cached.set(tenant, origins);
	return origins;
}

/**
 * Refuses a browser request from an origin the tenant has not allowed (403, OriginNotAllowed).
 * A request without Origin (a server SDK) is never refused: the list is about browsers only.
 */
export async function enforceOrigin(request: Request, env: Env, tenant: string): Promise<void> {
	const origin = request.headers.get("origin");
	if (origin === null) return;
	const allowed = await allowedOrigins(env, tenant);
	if (allowed !== null && !allowed.includes(origin)) throw new OriginNotAllowed();
}

/** Stores the tenant's allowed origins (null: any); this isolate uses them at once, others within ORIGINS_CACHE_TTL_MS. */
export async function setAllowedOrigins(env: Env, tenant: string, origins: readonly string[] | null): Promise<void> {
	await putAllowedOrigins(env.DB, tenant, origins, new Date().toISOString());
	cached.set(tenant, origins);
}
