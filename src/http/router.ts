// The HTTP surface: every route, its method, and the central error handling.
import { Router, type IRequest } from "itty-router";
import { createTenant } from "../admin/tenants";
import { authenticate } from "../auth/keys";
import { ingestEvents } from "../producer/ingest";
import { getStats } from "../reports/stats";
import { getUsage } from "../reports/usage";
import { ApiError, json, toErrorResponse } from "./errors";

type Args = [env: Env, ctx: ExecutionContext];

async function flushTenant(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["write", "read"]);
	try {
		return json({ flushed: await env.AGGREGATOR.getByName(tenant).flush() });
	} catch (err) {
		console.error("flush failed", { tenant }, err);
		throw new ApiError(503, "Flush failed; the deltas are kept and retried", undefined, { "retry-after": "5" });
	}
}

/** Routes by path; a known path with the wrong method answers 405 with Allow. */
const ROUTES: Record<string, Partial<Record<string, (request: Request, env: Env, ctx: ExecutionContext) => Promise<Response> | Response>>> = {
	"/v1/health": { GET: () => json({ status: "ok" }) },
	"/v1/events": { POST: ingestEvents },
	"/v1/flush": { POST: flushTenant },
	"/v1/usage": { GET: getUsage },
	"/v1/stats": { GET: getStats },
	"/v1/admin/tenants": { POST: createTenant },
};

const router = Router<IRequest, Args>({ catch: toErrorResponse });
for (const [path, methods] of Object.entries(ROUTES)) {
	for (const [method, handler] of Object.entries(methods)) router[method.toLowerCase() as "get" | "post"](path, handler!);
	router.all(path, () => {
		throw new ApiError(405, "Method not allowed", undefined, { allow: Object.keys(methods).join(", ") });
	});
}
router.all("*", () => {
	throw new ApiError(404, "Not found");
});

export function handleFetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
	return router.fetch(request, env, ctx);
}
