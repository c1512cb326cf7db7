// GET /v1/health: healthy, degraded or critical, from the health monitor and D1.
import { recentDeadLetters } from "../sinks/d1/dead-letters.js";
import { allDestinationHealth } from "../sinks/d1/destinations.js";
import { statusCounts } from "../forward/health.js";
import { json } from "../shared/errors.js";
import { HEALTH_MONITOR, type HealthSnapshot } from "../sinks/health-monitor.js";

/** The thresholds /v1/health judges by (documented in the README). */
export const HEALTH_THRESHOLDS = {
	/** D1 flushes failing for longer than this are critical. */
	criticalFlushFailureMs: 5 * 60_000,
	/** Spills within this window mean enqueues are failing now: critical. */
	criticalSpillWindowMs: 5 * 60_000,
	/** Dead letters or spills within this window are degraded. */
	recentWindowMs: 60 * 60_000,
} as const;

/** Recent dead letters are counted up to this many, then reported with `capped: true`: the unauthenticated check stays cheap. */
export const DEAD_LETTER_COUNT_CAP = 10_000;

export type HealthStatus = "healthy" | "degraded" | "critical";

export async function getHealth(_request: Request, env: Env): Promise<Response> {
	const now = Date.now();
	const [monitor, deadLetters, destinations] = await Promise.all([
		env.HEALTH.getByName(HEALTH_MONITOR)
			.snapshot()
			.then((snapshot): HealthSnapshot | null => snapshot)
			.catch(() => null),
		recentDeadLetters(env.DB, new Date(now - HEALTH_THRESHOLDS.recentWindowMs).toISOString(), DEAD_LETTER_COUNT_CAP).catch(() => null),
		allDestinationHealth(env.DB).catch(() => null),
	]);
	const failing = monitor?.failingFlushes ?? [];
	const spills = monitor?.spills ?? [];
	const checks = {
		d1: { ok: deadLetters !== null },
		monitor: { ok: monitor !== null },
		flushes: {
			retryingTenants: failing.length,
			failingOverThreshold: failing.filter((f) => now - f.since > HEALTH_THRESHOLDS.criticalFlushFailureMs).map((f) => f.tenant),
			oldestFailureSince: failing.length > 0 ? new Date(Math.min(...failing.map((f) => f.since))).toISOString() : null,
		},
		deadLetters: { lastHour: deadLetters?.count ?? null, capped: deadLetters?.capped ?? false },
		spills: {
			lastHour: spills.filter((s) => now - s.at <= HEALTH_THRESHOLDS.recentWindowMs).reduce((n, s) => n + s.events, 0),
			lastFiveMinutes: spills.filter((s) => now - s.at <= HEALTH_THRESHOLDS.criticalSpillWindowMs).reduce((n, s) => n + s.events, 0),
		},
		// Forwarding destinations by state, pipeline-wide and without ids. A tenant's provider outage
		// is not the pipeline's: it never changes the status (GET /v1/metrics shows each one).
		destinations: destinations === null ? null : statusCounts(destinations, now),
	};
	let status: HealthStatus = "healthy";
	if (checks.flushes.retryingTenants > 0 || (checks.deadLetters.lastHour ?? 0) > 0 || checks.spills.lastHour > 0) status = "degraded";
	if (!checks.d1.ok || !checks.monitor.ok || checks.flushes.failingOverThreshold.length > 0 || checks.spills.lastFiveMinutes > 0)
		status = "critical";
	// Load balancers and uptime checks read the status code: only critical is 503.
	return json({ status, checks }, status === "critical" ? 503 : 200);
}
