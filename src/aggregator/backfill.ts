// Backfilling a new meter from the raw-event archive: an archive part's events, folded through one
// meter only, into the open rows the next flush takes to D1. Only events the aggregator accepted
// before the meter existed count (the meter counted the later ones live), and each part counts
// once per meter (backfilled_parts, in the same transaction), so a repeated backfill adds nothing.
import { METER_ROLLUP, ROLLUPS } from "../sinks/rollups.js";
import type { ArchivedEvent } from "../sinks/archive.js";
import { foldMeters } from "./fold-meters.js";
import { addToOpen, bucketNames, type Folded } from "./fold.js";
import type { Parts } from "./parts.js";

export type BackfillResult = { counted: number; skipped: number } | "done" | "no-meter";

/** Call inside the store's transaction. */
export function backfillPart(p: Parts, meterId: number, part: string, events: readonly ArchivedEvent[], now: number): BackfillResult {
	const meter = p.meters.active().find((m) => m.id === meterId);
	if (!meter) return "no-meter";
	if (p.store.rows("SELECT 1 FROM backfilled_parts WHERE meter = ? AND part = ?", meterId, part).length > 0) return "done";
	const earlier = events.filter((event) => event.receivedAt < meter.createdAt);
	const { rows, skipped } = foldMeters(earlier, [meter], p.meterGroups, bucketNames(60_000));
	const folded: Folded = new Map(ROLLUPS.map((spec) => [spec, new Map()]));
	folded.set(METER_ROLLUP, rows);
	addToOpen(p.store, folded);
	p.meterGroups.save();
	p.store.exec("INSERT INTO backfilled_parts (meter, part, events, at) VALUES (?, ?, ?, ?)", meterId, part, earlier.length, now);
	if (p.store.state.openSince === null && rows.size > 0) p.store.state.openSince = now;
	p.store.state.counters.meter_skipped += skipped;
	return { counted: earlier.length - skipped, skipped };
}
