// A destination's health, from its failure streak and its dead letters (documented in the README).
import type { DestinationRow } from "../sinks/d1/destinations.js";

export type DestinationStatus = "healthy" | "degraded" | "critical";

export const DESTINATION_HEALTH = {
	/** Deliveries failing without a success for this long are critical. */
	criticalFailingMs: 15 * 60_000,
	/** A batch dead-lettered within this window is critical. */
	deadLetterWindowMs: 60 * 60_000,
} as const;

/** healthy: the last attempt succeeded (or none was made); degraded: failing, for under 15 min; critical: failing for 15 min or more, or a batch dead-lettered in the last hour. */
export function destinationStatus(
	row: Pick<DestinationRow, "consecutive_failures" | "failing_since" | "last_dead_letter_at">,
	now: number,
): DestinationStatus {
	const since = row.failing_since === null ? null : Date.parse(row.failing_since);
	const deadAt = row.last_dead_letter_at === null ? null : Date.parse(row.last_dead_letter_at);
	if (
		(since !== null && now - since >= DESTINATION_HEALTH.criticalFailingMs) ||
		(deadAt !== null && now - deadAt <= DESTINATION_HEALTH.deadLetterWindowMs)
	)
		return "critical";
	return row.consecutive_failures > 0 ? "degraded" : "healthy";
}

export interface DestinationHealth {
	id: string;
	kind: string;
	status: DestinationStatus;
	delivered: number;
	deadLettered: number;
	consecutiveFailures: number;
	failingSince: string | null;
	lastSuccessAt: string | null;
	lastFailureAt: string | null;
	lastError: string | null;
}

export function healthOf(row: DestinationRow, now: number): DestinationHealth {
	return {
		id: row.id,
		kind: row.kind,
		status: destinationStatus(row, now),
		delivered: row.delivered,
		deadLettered: row.dead_lettered,
		consecutiveFailures: row.consecutive_failures,
		failingSince: row.failing_since,
		lastSuccessAt: row.last_success_at,
		lastFailureAt: row.last_failure_at,
		lastError: row.last_error,
	};
}

/** How many destinations are in each state, pipeline-wide. */
export function statusCounts(rows: Parameters<typeof destinationStatus>[0][], now: number): Record<DestinationStatus, number> {
	const counts = { healthy: 0, degraded: 0, critical: 0 };
	for (const row of rows) counts[destinationStatus(row, now)]++;
	return counts;
}
