// GET /v1/metrics (a tenant's own, read key) and GET /v1/admin/metrics (every tenant, admin).
import type { AggregatorMetrics, AggregatorOperations } from "../aggregator/aggregator";
import { authenticate, requireAdmin } from "../auth/keys";
import { deadLetterCounts, listTenantIds, pipelineOperations, producerMetrics } from "../db/queries";
import { json } from "../http/errors";
import { onlyQuery } from "../http/params";

export interface TenantMetrics {
	tenant: string;
	received: number;
	enqueued: number;
	enqueueFailures: number;
	lost: number;
	spilled: number;
	respooled: number;
	consumed: number;
	duplicatesDropped: number;
	aggregated: number;
	flushedRows: number;
	flushFailures: number;
	deadLettered: number;
	replayed: number;
	oldestUnflushedAgeMs: number | null;
	spillPending: number;
}

/** How many aggregators the admin view asks at once. */
const FAN_OUT = 20;

export async function tenantMetrics(env: Env, tenant: string): Promise<TenantMetrics> {
	const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
	const [producer, aggregator, dead] = await Promise.all([
		producerMetrics(env.DB, tenant),
		env.AGGREGATOR.getByName(tenant).metrics() as Promise<AggregatorMetrics>,
		deadLetterCounts(env.DB, tenant, hourAgo),
	]);
	const c = aggregator.counters;
	return {
		tenant,
		received: producer.received ?? 0,
		enqueued: producer.enqueued ?? 0,
		enqueueFailures: producer.enqueue_failures ?? 0,
		lost: producer.lost ?? 0,
		spilled: c.spilled,
		respooled: c.respooled,
		consumed: c.consumed,
		duplicatesDropped: c.duplicates,
		aggregated: c.aggregated,
		flushedRows: c.flushed_rows,
		flushFailures: c.flush_failures,
		deadLettered: dead.total,
		replayed: dead.replayed,
		oldestUnflushedAgeMs: aggregator.oldestUnflushedMs,
		spillPending: aggregator.spillPending,
	};
}

/** Runs `ask` for every tenant, FAN_OUT at a time, in tenant order. */
async function askEveryTenant<T>(env: Env, ask: (tenant: string) => Promise<T>): Promise<T[]> {
	const ids = await listTenantIds(env.DB);
	const answers: T[] = [];
	for (let i = 0; i < ids.length; i += FAN_OUT) answers.push(...(await Promise.all(ids.slice(i, i + FAN_OUT).map(ask))));
	return answers;
}

export async function getTenantMetrics(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	return json(await tenantMetrics(env, tenant));
}

/** Every tenant's counters and their totals; asks each tenant's aggregator, FAN_OUT at a time. */
export async function getAllMetrics(request: Request, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const tenants = await askEveryTenant(env, (tenant) => tenantMetrics(env, tenant));
	const totals: Record<string, number | null> = {};
	for (const metrics of tenants) {
		for (const [name, value] of Object.entries(metrics)) {
			if (typeof value === "number" && name !== "oldestUnflushedAgeMs") totals[name] = ((totals[name] as number | undefined) ?? 0) + value;
		}
	}
	const ages = tenants.map((t) => t.oldestUnflushedAgeMs).filter((age): age is number => age !== null);
	totals.oldestUnflushedAgeMs = ages.length > 0 ? Math.max(...ages) : null;
	return json({ tenants, totals });
}

/**
 * GET /v1/admin/operations: the platform operations the pipeline caused (requests, queue messages,
 * Durable Object calls and rows, D1 rows, Analytics Engine points), from its own instrumentation.
 * The benchmark prices these; every tenant's aggregator is asked, FAN_OUT at a time.
 */
export async function getOperations(request: Request, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const tenants = await askEveryTenant(env, async (tenant): Promise<{ tenant: string } & AggregatorOperations> => ({
		tenant,
		...(await env.AGGREGATOR.getByName(tenant).operations()),
	}));
	const aggregators: Record<string, number> = {};
	for (const { tenant: _tenant, ...ops } of tenants) for (const [name, value] of Object.entries(ops)) aggregators[name] = (aggregators[name] ?? 0) + value;
	return json({ pipeline: await pipelineOperations(env.DB), aggregators, tenants });
}
