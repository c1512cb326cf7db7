// PUT and GET /v1/settings/cors: the browser origins a tenant's write key may be used from. The
// read key sets them: a write key ships inside web pages, so it must never change its own limits.
import { authenticate } from "../http/auth.js";
import { readJson } from "../http/body.js";
import { normalizeOrigin, ORIGINS_CACHE_TTL_MS, setAllowedOrigins } from "../http/cors.js";
import { onlyQuery } from "../http/params.js";
import { findAllowedOrigins } from "../sinks/d1/cors.js";
import { ApiError, invalidField, json, type FieldIssue } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";

/** At most this many origins per tenant. */
export const MAX_ALLOWED_ORIGINS = 50;
const SHAPE = "must be an origin: http(s)://host[:port], without a path";

/** The body's allowedOrigins, normalised and without duplicates; null (any origin) stays null. */
function parseAllowedOrigins(body: unknown): string[] | null {
	if (!isPlainObject(body)) throw invalidField("body", "must be a JSON object");
	for (const key of Object.keys(body)) if (key !== "allowedOrigins") throw invalidField(key, "unknown field");
	const list = body.allowedOrigins;
	if (list === null) return null;
	if (!Array.isArray(list)) throw invalidField("allowedOrigins", "must be an array of origins, or null for any origin");
	if (list.length > MAX_ALLOWED_ORIGINS) throw invalidField("allowedOrigins", `must have at most ${MAX_ALLOWED_ORIGINS} origins`);
	const issues: FieldIssue[] = [];
	const origins = new Set<string>();
	list.forEach((value, i) => {
		const origin = normalizeOrigin(value);
		if (origin === null) issues.push({ path: `allowedOrigins[${i}]`, message: SHAPE });
		else origins.add(origin);
	});
	if (issues.length > 0)
		throw new ApiError(400, `Invalid allowed origins: ${issues.map((i) => `${i.path} ${i.message}`).join("; ")}`, { details: issues });
	return [...origins];
}

/** PUT /v1/settings/cors {"allowedOrigins": [...] | null} (read key). */
export async function putCorsSettings(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const origins = parseAllowedOrigins(await readJson(request, 32 * 1024));
	await setAllowedOrigins(env, tenant, origins);
	return json({ allowedOrigins: origins, effectiveWithinMs: ORIGINS_CACHE_TTL_MS });
}

/** GET /v1/settings/cors (read key): the stored list, null when any origin may send. */
export async function getCorsSettings(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	return json({ allowedOrigins: await findAllowedOrigins(env.DB, tenant) });
}
