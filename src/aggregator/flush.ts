// One flush to D1: the head sealed batch (or a new one) is applied under the flush id
// `<incarnation>:<batch>`, guarded by D1's ledger, and cleared locally only once D1 has committed
// it; its Analytics Engine points go to the outbox in the same transaction as the clear.
import type { FlushBatch } from "../sinks/d1/rollups.js";
import { toDataPoint, type DataPoint } from "../sinks/analytics.js";
import { EVENT_ROLLUP, isPacked } from "../sinks/rollups.js";
import { batchRows, clearBatch, flushId, isDataError, sealNext, splitBatch } from "./batches.js";
import { noteFlushedMinutes } from "./compaction.js";
import { reportHealth } from "./health-report.js";
import { appendPoints } from "./outbox.js";
import type { Parts } from "./parts.js";
import { backOff, recovered } from "./state.js";

/** Seals (or resumes) one batch and writes it to D1. Returns rows flushed, or null if idle. */
export async function flushOnce(p: Parts, now: number): Promise<number | null> {
	const { store } = p;
	const batch = sealNext(store, now);
	if (batch === null) return null;
	const tenant = store.state.tenant!;
	const rows = batchRows(store, batch, now);
	const id = flushId(store.state.incarnation!, batch);
	const flush: FlushBatch = { flushId: id, rows, stats: { rowsWritten: 0 } };
	try {
		await p.sinks.d1(tenant, flush);
	} catch (err) {
		if (isDataError(err)) {
			// D1's answer will not change for these rows: narrow it down, never block the rest.
			const quarantined = splitBatch(store, batch, String(err), now);
			console.error(
				quarantined ? "QUARANTINED: D1 refused a rollup row" : "D1 refused a flush for a data reason; split in halves",
				{ tenant, flushId: id },
				err,
			);
			return 0;
		}
		store.transact((state) => {
			backOff(state, "flush", now);
			state.failingSince ??= now;
			state.counters.flush_failures++;
		});
		await reportHealth(p, now, true);
		throw err;
	}
	// D1 has the batch: only now may the local copy go. Dashboards get their points from an
	// outbox in the same transaction, so an Analytics Engine failure cannot touch D1's result.
	let count = 0;
	store.transact(
		(state) => {
			clearBatch(store, batch);
			const points: DataPoint[] = [];
			for (const [spec, specRows] of rows) {
				// Dashboards get usage, adjustments and event stats; meters and series are read through the API.
				if (!isPacked(spec)) for (const row of specRows) points.push(toDataPoint(tenant, spec, row));
				count += specRows.length;
			}
			appendPoints(store, points);
			noteFlushedMinutes(
				state,
				rows.get(EVENT_ROLLUP)!.map((row) => Date.parse(row.minute as string)),
			);
			state.counters.flushed_rows += count;
			state.lastFlushId = id;
			state.failingSince = null;
			recovered(state, "flush");
		},
		{ d1_rows_written: flush.stats?.rowsWritten ?? 0 },
	);
	await reportHealth(p, now);
	return count;
}

/** Flushes batch after batch, at most `max` of them, until the aggregator is idle; returns rows flushed. */
export async function flushUpTo(p: Parts, max: number): Promise<number> {
	let rows = 0;
	for (let i = 0; i < max; i++) {
		const count = await flushOnce(p, Date.now());
		if (count === null) break;
		rows += count;
	}
	return rows;
}
