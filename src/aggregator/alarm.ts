// When the aggregator's alarm must fire next: the earliest moment any of its work is due, never
// before a backoff ends, or null when nothing remains (partywhen's rule: re-arm only if work remains).
import { DEDUPE_WINDOW_MS } from "../event/model.js";
import { openRows, sealedBatches } from "./batches.js";
import { archiveDueAt } from "./archive.js";
import { compactAt } from "./compaction.js";
import { HOUR_MS } from "./dedupe.js";
import { healthReportPending } from "./health-report.js";
import { outboxPoints } from "./outbox.js";
import { flushSettings, type Parts } from "./parts.js";
import { quarantinePending } from "./quarantine.js";
import { hasSpill } from "./spill.js";

export interface AlarmInputs {
	now: number;
	/** A batch is sealed (a flush failed or was interrupted): retried once its backoff ends. */
	sealed: boolean;
	/** Open rows, and the flush settings that decide when they are due. */
	openRows: number;
	maxRows: number;
	intervalMs: number;
	/** When a D1 flush may be retried (0: no failure pending). */
	retryAt: number;
	outboxPending: boolean;
	outboxRetryAt: number;
	spillPending: boolean;
	respoolRetryAt: number;
	quarantinePending: boolean;
	quarantineRetryAt: number;
	/** The health monitor has not yet heard the current flush health. */
	healthPending: boolean;
	healthRetryAt: number;
	/** When the oldest remembered partition of event ids falls out of the dedupe window, or null. */
	pruneAt: number | null;
	/** When D1's oldest uncompacted event minutes are due to be folded into hours, or null. */
	compactAt: number | null;
	compactRetryAt: number;
	/** When the raw-event archive is next due (backoff included), or null. */
	archiveAt: number | null;
}

/** The next alarm time, or null when nothing is left to do. */
export function nextAlarm(inputs: AlarmInputs): number | null {
	const { now } = inputs;
	const due: number[] = [];
	if (inputs.sealed) due.push(Math.max(now, inputs.retryAt));
	if (inputs.openRows > 0) due.push(Math.max(inputs.openRows >= inputs.maxRows ? now : now + inputs.intervalMs, inputs.retryAt));
	if (inputs.outboxPending) due.push(Math.max(now, inputs.outboxRetryAt));
	if (inputs.spillPending) due.push(Math.max(now, inputs.respoolRetryAt));
	if (inputs.quarantinePending) due.push(Math.max(now, inputs.quarantineRetryAt));
	if (inputs.healthPending) due.push(Math.max(now, inputs.healthRetryAt));
	if (inputs.pruneAt !== null) due.push(Math.max(now, inputs.pruneAt));
	if (inputs.compactAt !== null) due.push(Math.max(now, inputs.compactAt, inputs.compactRetryAt));
	if (inputs.archiveAt !== null) due.push(Math.max(now, inputs.archiveAt));
	return due.length === 0 ? null : Math.min(...due);
}

/** The alarm inputs from the aggregator's storage and state now. */
export function alarmInputs(p: Parts, now: number): AlarmInputs {
	const { store } = p;
	const state = store.state;
	const oldest = p.ids.oldestHour();
	const { intervalMs, maxRows } = flushSettings(p.env);
	return {
		now,
		sealed: sealedBatches(store).length > 0,
		openRows: openRows(store),
		maxRows,
		intervalMs,
		retryAt: state.retries.flush.retryAt,
		outboxPending: outboxPoints(store) > 0,
		outboxRetryAt: state.retries.outbox.retryAt,
		spillPending: hasSpill(store),
		respoolRetryAt: state.retries.respool.retryAt,
		quarantinePending: quarantinePending(store) > 0,
		quarantineRetryAt: state.retries.quarantine.retryAt,
		healthPending: healthReportPending(state),
		healthRetryAt: state.retries.health.retryAt,
		pruneAt: oldest === null ? null : (oldest + 1) * HOUR_MS + DEDUPE_WINDOW_MS,
		compactAt: compactAt(state),
		compactRetryAt: state.retries.compact.retryAt,
		archiveAt: archiveDueAt(p, now),
	};
}

/** After an ingest: arms the flush alarm if none is set, or pulls it forward once enough rows are pending. */
export async function armFlush(storage: DurableObjectStorage, p: Parts, now: number): Promise<void> {
	const current = await storage.getAlarm();
	const { intervalMs, maxRows } = flushSettings(p.env);
	// Never later than the flush interval (an alarm set only for pruning may be days away),
	// and never before a D1 retry's backoff ends.
	const due = Math.max(openRows(p.store) >= maxRows ? now : now + intervalMs, p.store.state.retries.flush.retryAt);
	if (current === null || due < current) await storage.setAlarm(due);
}

/** After an alarm or a flush: re-arms only if work remains. */
export async function rearm(storage: DurableObjectStorage, p: Parts, now: number): Promise<void> {
	const due = nextAlarm(alarmInputs(p, now));
	if (due === null) await storage.deleteAlarm();
	else await storage.setAlarm(due);
}
