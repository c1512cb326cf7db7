// The HTTP surface: every route, its method, and the central error handling.
import { Router, type IRequest } from "itty-router";
import { discardDeadLetter, listDeadLettersRoute, replayDeadLetters } from "./admin/dead-letters.js";
import { backfillRoute } from "./admin/backfill.js";
import { createKey, deleteKey } from "./admin/keys.js";
import { createTenant } from "./admin/tenants.js";
import { deleteTestData } from "./admin/test-data.js";
import { authenticate } from "./http/auth.js";
import { isPreflight, preflight, withCors } from "./http/cors.js";
import { adminClosePeriod, closePeriod, listPeriods } from "./billing/periods.js";
import { posthogCapture, POSTHOG_PATHS } from "./ingest/posthog.js";
import { posthogFlags, posthogRemoteConfig, posthogRemoteConfigScript } from "./ingest/posthog-config.js";
import { getCorsSettings, putCorsSettings } from "./ingest/cors-settings.js";
import { segmentHandler, segmentSdkMetrics } from "./ingest/segment.js";
import { getHealth } from "./read/health.js";
import { getAllMetrics, getOperations } from "./admin/metrics.js";
import { getTenantMetrics } from "./read/metrics.js";
import { ingestEvents } from "./ingest/events.js";
import { getStats } from "./read/stats.js";
import { getRejections } from "./read/rejections.js";
import { getUsage } from "./read/usage.js";
import { createMeterRoute, deleteMeterRoute, getMeterRoute, listMetersRoute } from "./read/meters.js";
import { queryMeterRoute } from "./read/meter-query.js";
import { getTimeseries } from "./read/timeseries.js";
import { createPlanRoute, getPlanRoute, listPlansRoute } from "./billing/plans.js";
import { getSubscriptionRoute, putSubscriptionRoute } from "./billing/subscriptions.js";
import { getInvoiceRoute, listInvoicesRoute } from "./billing/invoices.js";
import { serveDashboard } from "./dashboard/serve.js";
import { getExportPartRoute, listExportRoute } from "./read/export.js";
import {
	createDestinationRoute,
	deleteDestinationRoute,
	getDestinationRoute,
	listDestinationsRoute,
	listForwardDeadLettersRoute,
	replayForwardDeadLettersRoute,
} from "./forward/routes.js";
import { PIPELINE_WIDE } from "./sinks/d1/metrics.js";
import { countProducer } from "./sinks/counters.js";
import { ApiError, json, toErrorResponse } from "./shared/errors.js";
import { onlyQuery } from "./http/params.js";

type Handler = (request: IRequest, env: Env, ctx: ExecutionContext) => Promise<Response> | Response;

async function flushTenant(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["write", "read"]);
	onlyQuery(new URL(request.url), []);
	try {
		return json({ flushed: await env.AGGREGATOR.getByName(tenant).flush() });
	} catch (err) {
		console.error("flush failed", { tenant }, err);
		throw new ApiError(503, "Flush failed; the deltas are kept and retried", { headers: { "retry-after": "5" } });
	}
}

/** Every route by path pattern; a known path with the wrong method answers 405 with Allow. */
const ROUTES: Record<string, Record<string, Handler>> = {
	"/v1/health": { GET: getHealth },
	"/v1/flush": { POST: flushTenant },
	"/v1/usage": { GET: getUsage },
	"/v1/stats": { GET: getStats },
	"/v1/metrics": { GET: getTenantMetrics },
	"/v1/periods": { GET: listPeriods },
	"/v1/periods/:period/close": { POST: closePeriod },
	"/v1/rejections": { GET: getRejections },
	"/v1/meters": { POST: createMeterRoute, GET: listMetersRoute },
	"/v1/meters/:slug": { GET: getMeterRoute, DELETE: deleteMeterRoute },
	"/v1/meters/:slug/query": { GET: queryMeterRoute },
	"/v1/query/timeseries": { GET: getTimeseries },
	"/v1/plans": { POST: createPlanRoute, GET: listPlansRoute },
	"/v1/plans/:key": { GET: getPlanRoute },
	"/v1/customers/:id/subscription": { PUT: putSubscriptionRoute, GET: getSubscriptionRoute },
	"/v1/customers/:id/invoice": { GET: getInvoiceRoute },
	"/v1/invoices": { GET: listInvoicesRoute },
	"/v1/export": { GET: listExportRoute },
	"/v1/export/:date/:part": { GET: getExportPartRoute },
	"/v1/settings/cors": { PUT: putCorsSettings, GET: getCorsSettings },
	"/v1/destinations": { POST: createDestinationRoute, GET: listDestinationsRoute },
	"/v1/destinations/:id": { GET: getDestinationRoute, DELETE: deleteDestinationRoute },
	"/v1/destinations/:id/dead-letters": { GET: listForwardDeadLettersRoute },
	"/v1/destinations/:id/dead-letters/replay": { POST: replayForwardDeadLettersRoute },
	"/v1/test-data": { DELETE: deleteTestData },
	"/dashboard": { GET: serveDashboard },
	"/dashboard/*": { GET: serveDashboard },
	"/v1/admin/tenants": { POST: createTenant },
	"/v1/admin/tenants/:id/keys": { POST: createKey },
	"/v1/admin/keys/:prefix": { DELETE: deleteKey },
	"/v1/admin/tenants/:id/periods/:period/close": { POST: adminClosePeriod },
	"/v1/admin/metrics": { GET: getAllMetrics },
	"/v1/admin/operations": { GET: getOperations },
	"/v1/admin/dead-letters": { GET: listDeadLettersRoute },
	"/v1/admin/dead-letters/replay": { POST: replayDeadLetters },
	"/v1/admin/backfill": { POST: backfillRoute },
	"/v1/admin/dead-letters/:id": { DELETE: discardDeadLetter },
};

/**
 * The routes a web page may call, the only ones with CORS: write-key ingest and what posthog-js
 * asks for at start. Read, admin and dashboard routes never answer a preflight.
 */
const BROWSER_ROUTES: Record<string, Record<string, Handler>> = {
	"/v1/events": { POST: ingestEvents },
	// Segment's HTTP Tracking API, and the one-letter paths analytics.js posts to (/b: batching).
	...Object.fromEntries(
		(["track", "identify", "page", "screen", "group", "alias"] as const).flatMap((type) => [
			[`/v1/${type}`, { POST: segmentHandler(type) }],
			[`/v1/${type[0]}`, { POST: segmentHandler(type) }],
		]),
	),
	"/v1/batch": { POST: segmentHandler("batch") },
	"/v1/b": { POST: segmentHandler("batch") },
	"/v1/m": { POST: segmentSdkMetrics },
	// PostHog's capture API; itty-router matches these with or without a trailing slash.
	...Object.fromEntries(POSTHOG_PATHS.map((path) => [path, { POST: posthogCapture }])),
	"/flags": { POST: posthogFlags, GET: posthogFlags },
	"/decide": { POST: posthogFlags, GET: posthogFlags },
	"/array/:token/config": { GET: posthogRemoteConfig },
	"/array/:token/config.js": { GET: posthogRemoteConfigScript },
};

const router = Router<IRequest, [env: Env, ctx: ExecutionContext]>({ catch: toErrorResponse });
function mount(routes: Record<string, Record<string, Handler>>, cors: boolean): void {
	for (const [path, methods] of Object.entries(routes)) {
		for (const [method, handler] of Object.entries(methods))
			router[method.toLowerCase() as "get" | "post" | "put" | "delete"](path, cors ? withCors(handler) : handler);
		// A bare OPTIONS (no Origin, no Access-Control-Request-Method) is no preflight: it gets the 405.
		if (cors) router.options(path, (request) => (isPreflight(request) ? preflight(request, Object.keys(methods)) : undefined));
		router.all(path, () => {
			throw new ApiError(405, "Method not allowed", { headers: { allow: Object.keys(methods).join(", ") } });
		});
	}
}
mount(BROWSER_ROUTES, true);
mount(ROUTES, false);
router.all("*", () => {
	throw new ApiError(404, "Not found");
});

export function handleFetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
	countProducer(PIPELINE_WIDE, "http_requests", 1);
	return router.fetch(request, env, ctx);
}
