// The alarm's work after the D1 flush, in order. Each step has its own backoff in the typed state,
// so one failing platform (R2, Analytics Engine, the queue, the monitor) never holds up the others
// or billing, and `nextAlarm` brings the alarm back when a step is due again.
import { DEDUPE_WINDOW_MS } from "../event/model.js";
import { archiveOnce } from "./archive.js";
import { compact } from "./compaction.js";
import { reportHealth } from "./health-report.js";
import { drainOutbox } from "./outbox.js";
import type { Parts } from "./parts.js";
import { storeQuarantine } from "./quarantine.js";
import { respool } from "./spill.js";

export async function housekeep(p: Parts, now: number): Promise<void> {
	const { store } = p;
	// Whole id partitions and meter-group hours expire together once past the dedupe window.
	p.ids.pruneWindow(now);
	p.meterGroups.prune(now - DEDUPE_WINDOW_MS);
	await compact(p, now);
	await storeQuarantine(p, now);
	await archiveOnce(p, now);
	drainOutbox(store, (points) => p.sinks.analytics(points), now);
	if (store.state.tenant !== null) await respool(store, p.env.EVENTS, now);
	if (now >= store.state.retries.health.retryAt) await reportHealth(p, now);
}
