// Folding this tenant's event minutes in D1 into hours once they are older than the retention,
// so event rollups do not grow by a row per name per minute forever.
import { compactEventMinutes } from "../sinks/d1/rollups.js";
import { HOUR_MS } from "./dedupe.js";
import type { Parts } from "./parts.js";
import { backOff, recovered, type AggregatorState } from "./state.js";

/** Event stats stay per minute in D1 this long, then are folded into hours. */
export const MINUTE_RETENTION_MS = 7 * 86_400_000;

/** When the oldest uncompacted minutes are due to be folded, or null when there are none. */
export function compactAt(state: AggregatorState): number | null {
	const oldest = state.uncompacted?.oldest;
	return oldest === undefined ? null : oldest - (oldest % HOUR_MS) + HOUR_MS + MINUTE_RETENTION_MS;
}

/** Notes flushed event minutes (epoch ms), so their folding is scheduled. Call inside a transaction. */
export function noteFlushedMinutes(state: AggregatorState, minutes: number[]): void {
	for (const minute of minutes) {
		state.uncompacted = {
			oldest: Math.min(minute, state.uncompacted?.oldest ?? minute),
			newest: Math.max(minute, state.uncompacted?.newest ?? minute),
		};
	}
}

/** Folds D1's event minutes older than MINUTE_RETENTION_MS into hours, for this tenant, when due. */
export async function compact(p: Parts, now: number): Promise<void> {
	const state = p.store.state;
	const due = compactAt(state);
	if (due === null || now < due || now < state.retries.compact.retryAt) return;
	const cutoff = now - MINUTE_RETENTION_MS - ((now - MINUTE_RETENTION_MS) % HOUR_MS);
	let written: number;
	try {
		written = await compactEventMinutes(p.env.DB, state.tenant!, new Date(cutoff).toISOString());
	} catch (err) {
		console.error("folding event minutes into hours failed; retried later", err);
		p.store.transact((s) => backOff(s, "compact", now));
		return;
	}
	p.store.transact(
		(s) => {
			s.uncompacted = s.uncompacted!.newest < cutoff ? null : { oldest: cutoff, newest: s.uncompacted!.newest };
			recovered(s, "compact");
		},
		{ d1_rows_written: written },
	);
}
