// Events the producer could not enqueue, kept by the tenant's aggregator in rows of at most
// MAX_SPILL_ROW_BYTES (a row may hold 2 MB), and re-enqueued from its alarm, oldest first. They go
// back through the queue, not straight into the rollups, so every event takes one path.
import { utf8Length } from "../shared/bytes.js";
import type { QueuedEvent } from "../event/model.js";
import { enqueueEvents } from "../event/pack.js";
import { backOff, recovered, type Store } from "./state.js";

export const MAX_SPILL_ROW_BYTES = 1_000_000;
/** Spilled rows re-enqueued per alarm. */
const RESPOOL_PER_ALARM = 20;

/** The events as JSON arrays of at most MAX_SPILL_ROW_BYTES each. */
export function spillRows(events: QueuedEvent[]): string[] {
	const rows: string[] = [];
	let current: string[] = [];
	let bytes = 2;
	for (const event of events) {
		const json = JSON.stringify(event);
		const size = utf8Length(json) + 1;
		if (current.length > 0 && bytes + size > MAX_SPILL_ROW_BYTES) {
			rows.push(`[${current.join(",")}]`);
			current = [];
			bytes = 2;
		}
		current.push(json);
		bytes += size;
	}
	if (current.length > 0) rows.push(`[${current.join(",")}]`);
	return rows;
}

/** Stores spilled events. Call inside a transaction. */
export function storeSpill(store: Store, events: QueuedEvent[], now: number): void {
	for (const row of spillRows(events)) store.exec("INSERT INTO spilled_events (events, spilled_at) VALUES (?, ?)", row, now);
	store.state.counters.spilled += events.length;
}

export function spillPending(store: Store): number {
	return store.rows<{ n: number }>("SELECT coalesce(sum(json_array_length(events)), 0) AS n FROM spilled_events")[0]!.n;
}

export function hasSpill(store: Store): boolean {
	return store.rows("SELECT 1 FROM spilled_events LIMIT 1").length > 0;
}

/** Re-enqueues spilled rows, oldest first; a failure keeps them and backs off. */
export async function respool(store: Store, queue: Queue, now: number): Promise<void> {
	if (now < store.state.retries.respool.retryAt) return;
	const tenant = store.state.tenant!;
	for (const chunk of store.rows<{ id: number; events: string }>(
		"SELECT id, events FROM spilled_events ORDER BY id LIMIT ?",
		RESPOOL_PER_ALARM,
	)) {
		const events = JSON.parse(chunk.events) as QueuedEvent[];
		try {
			await enqueueEvents(queue, tenant, events);
		} catch (err) {
			console.error("re-enqueue of spilled events failed; kept for a later alarm", err);
			store.transact((state) => backOff(state, "respool", now));
			return;
		}
		store.transact((state) => {
			store.exec("DELETE FROM spilled_events WHERE id = ?", chunk.id);
			state.counters.respooled += events.length;
			recovered(state, "respool");
		});
	}
}
