// GET /v1/metrics: a tenant's own pipeline counters (read key), from its producers, its
// aggregator and D1's dead letters.
import type { AggregatorMetrics } from "../aggregator/snapshot.js";
import { authenticate } from "../http/auth.js";
import { deadLetterCounts } from "../sinks/d1/dead-letters.js";
import { listDestinations } from "../sinks/d1/destinations.js";
import { healthOf } from "../forward/health.js";
import { producerMetrics } from "../sinks/d1/metrics.js";
import { json } from "../shared/errors.js";
import { onlyQuery } from "../http/params.js";

export interface TenantMetrics {
	tenant: string;
	received: number;
	enqueued: number;
	enqueueFailures: number;
	lost: number;
	/** Events the Segment and PostHog APIs rejected one by one (GET /v1/rejections). */
	rejected: number;
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
	/** Events refused for a new event name or SKU past the tenant's caps, at the edge or on arrival. */
	capped: number;
	/** Events refused on arrival because their timestamp had left the dedupe window. */
	expired: number;
	/** Rollup rows D1 refused for a data reason, set aside as dead letters so they block nothing. */
	quarantinedRows: number;
	/** Analytics Engine points dropped from a full outbox (dashboards only; D1 is exact). */
	analyticsDropped: number;
	/** Meter readings skipped because the event lacked the meter's value or it was not a number. */
	meterSkipped: number;
	/** Meter readings whose group values were folded into "(other)" past the meter's group cap. */
	meterGroupsFolded: number;
	/** Events whose route was recorded as "(other)" past the tenant's cap of distinct routes. */
	routesFolded: number;
	/** Events written to the raw-event archive in R2. */
	archived: number;
	destinations: ReturnType<typeof healthOf>[];
}

/**
 * Tenants per admin page. Each costs about three subrequests (its aggregator and two D1 reads), so
 * a full page stays far below the 1,000 one invocation may make.
 */

export async function tenantMetrics(env: Env, tenant: string): Promise<TenantMetrics> {
	const [producer, aggregator, dead, destinations] = await Promise.all([
		producerMetrics(env.DB, tenant),
		env.AGGREGATOR.getByName(tenant).metrics() as Promise<AggregatorMetrics>,
		deadLetterCounts(env.DB, tenant),
		listDestinations(env.DB, tenant),
	]);
	const now = Date.now();
	const c = aggregator.counters;
	return {
		tenant,
		received: producer.received ?? 0,
		enqueued: producer.enqueued ?? 0,
		enqueueFailures: producer.enqueue_failures ?? 0,
		lost: producer.lost ?? 0,
		rejected: producer.rejected ?? 0,
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
		capped: (producer.capped ?? 0) + c.capped,
		expired: c.expired,
		quarantinedRows: c.quarantined_rows,
		analyticsDropped: c.analytics_dropped,
		meterSkipped: c.meter_skipped,
		meterGroupsFolded: c.meter_other,
		routesFolded: c.route_other,
		archived: c.archived,
		// Each forwarding destination's health (GET /v1/destinations shows the same with its config).
		destinations: destinations.map((row) => healthOf(row, now)),
	};
}

export async function getTenantMetrics(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	return json(await tenantMetrics(env, tenant));
}
