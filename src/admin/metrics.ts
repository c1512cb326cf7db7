// GET /v1/admin/metrics and GET /v1/admin/operations: every tenant's counters and operations,
// paged by tenant id so one request never makes more subrequests than an invocation may.
import type { AggregatorOperations } from "../aggregator/snapshot.js";
import { requireAdmin } from "../http/auth.js";
import { onlyQuery } from "../http/params.js";
import { tenantMetrics } from "../read/metrics.js";
import { pipelineOperations } from "../sinks/d1/metrics.js";
import { listTenantIds } from "../sinks/d1/tenants.js";
import { invalidField, json } from "../shared/errors.js";
import { TENANT_ID } from "./tenants.js";

/** How many aggregators the admin view asks at once. */
const FAN_OUT = 20;
const PAGE_SIZE = { default: 50, max: 100 } as const;

interface TenantPage {
	ids: string[];
	/** The page's last tenant id, or null on the last page. */
	nextCursor: string | null;
}

/** The tenants `?limit=` and `?cursor=` (the last tenant id of the previous page) name; any other query parameter is refused. */
async function tenantPage(request: Request, env: Env): Promise<TenantPage> {
	const url = new URL(request.url);
	onlyQuery(url, ["limit", "cursor"]);
	const limitText = url.searchParams.get("limit") ?? String(PAGE_SIZE.default);
	const limit = Number(limitText);
	if (!/^\d{1,3}$/.test(limitText) || limit < 1 || limit > PAGE_SIZE.max)
		throw invalidField("limit", `must be an integer 1-${PAGE_SIZE.max}`);
	const cursor = url.searchParams.get("cursor");
	if (cursor !== null && !TENANT_ID.test(cursor)) throw invalidField("cursor", "must be a cursor from a previous page");
	// One id more than the page tells whether another page follows.
	const ids = await listTenantIds(env.DB, cursor ?? "", limit + 1);
	const page = ids.slice(0, limit);
	return { ids: page, nextCursor: ids.length > limit ? page[page.length - 1]! : null };
}

/** Runs `ask` for each tenant, FAN_OUT at a time, in tenant order. */
async function askTenants<T>(ids: string[], ask: (tenant: string) => Promise<T>): Promise<T[]> {
	const answers: T[] = [];
	for (let i = 0; i < ids.length; i += FAN_OUT) answers.push(...(await Promise.all(ids.slice(i, i + FAN_OUT).map(ask))));
	return answers;
}

/** One page of tenants' counters and the page's totals; asks each tenant's aggregator, FAN_OUT at a time. */
export async function getAllMetrics(request: Request, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const page = await tenantPage(request, env);
	const tenants = await askTenants(page.ids, (tenant) => tenantMetrics(env, tenant));
	const totals: Record<string, number | null> = {};
	for (const metrics of tenants) {
		for (const [name, value] of Object.entries(metrics)) {
			if (typeof value === "number" && name !== "oldestUnflushedAgeMs")
				totals[name] = ((totals[name] as number | undefined) ?? 0) + value;
		}
	}
	const ages = tenants.map((t) => t.oldestUnflushedAgeMs).filter((age): age is number => age !== null);
	totals.oldestUnflushedAgeMs = ages.length > 0 ? Math.max(...ages) : null;
	return json({ tenants, totals, nextCursor: page.nextCursor });
}

/**
 * GET /v1/admin/operations: the platform operations the pipeline caused (requests, queue messages,
 * Durable Object calls and rows, D1 rows, Analytics Engine points), from its own instrumentation.
 * The benchmark prices these. `pipeline` is pipeline-wide on every page; `aggregators` totals the
 * page's tenants, whose aggregators are asked FAN_OUT at a time.
 */
export async function getOperations(request: Request, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const page = await tenantPage(request, env);
	const tenants = await askTenants(page.ids, async (tenant): Promise<{ tenant: string } & AggregatorOperations> => ({
		tenant,
		...(await env.AGGREGATOR.getByName(tenant).operations()),
	}));
	const aggregators: Record<string, number> = {};
	for (const { tenant: _tenant, ...ops } of tenants)
		for (const [name, value] of Object.entries(ops)) aggregators[name] = (aggregators[name] ?? 0) + value;
	return json({ pipeline: await pipelineOperations(env.DB), aggregators, tenants, nextCursor: page.nextCursor });
}
