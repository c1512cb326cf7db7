// Rows D1 refused for a data reason, kept in the aggregator until D1 stores them as dead letters
// (`quarantine:<tenant>:<flush id>:<n>`), where the admin API lists them.
import superjson from "superjson";
import type { NewDeadLetter } from "../sinks/d1/dead-letters.js";
import type { RollupRow } from "../sinks/rollups.js";
import type { Parts } from "./parts.js";
import { backOff, recovered, type Store } from "./state.js";

/** Rows stored as dead letters per alarm. */
const PER_ALARM = 100;

export interface QuarantinedRow {
	id: number;
	flushId: string;
	rollup: string;
	row: RollupRow;
	error: string;
	at: number;
}

export function quarantinedRows(store: Store, limit: number): QuarantinedRow[] {
	return store
		.rows<{ id: number; flush_id: string; rollup: string; row: string; error: string; at: number }>(
			"SELECT id, flush_id, rollup, row, error, at FROM quarantine ORDER BY id LIMIT ?",
			limit,
		)
		.map((r) => ({ id: r.id, flushId: r.flush_id, rollup: r.rollup, row: JSON.parse(r.row) as RollupRow, error: r.error, at: r.at }));
}

export function quarantinePending(store: Store): number {
	return store.rows<{ n: number }>("SELECT count(*) AS n FROM quarantine")[0]!.n;
}

/** Stores the oldest quarantined rows as dead letters in D1; they stay here until D1 has them. */
export async function storeQuarantine(p: Parts, now: number): Promise<void> {
	const state = p.store.state;
	if (now < state.retries.quarantine.retryAt) return;
	const rows = quarantinedRows(p.store, PER_ALARM);
	if (rows.length === 0) return;
	const letters: NewDeadLetter[] = rows.map((q) => ({
		id: `quarantine:${state.tenant}:${q.flushId}:${q.id}`,
		tenant: state.tenant,
		body: superjson.stringify({ quarantined: { rollup: q.rollup, flushId: q.flushId, row: q.row } }),
		error: `D1 refused this ${q.rollup} rollup row: ${q.error}`,
		attempts: 1,
		first_failed_at: new Date(q.at).toISOString(),
		last_failed_at: new Date(now).toISOString(),
	}));
	try {
		await p.sinks.deadLetters(letters);
	} catch (err) {
		console.error("storing quarantined rows in D1 failed; kept for a later alarm", err);
		p.store.transact((s) => backOff(s, "quarantine", now));
		return;
	}
	p.store.transact((s) => {
		p.store.exec("DELETE FROM quarantine WHERE id <= ?", rows[rows.length - 1]!.id);
		recovered(s, "quarantine");
	});
}
