// Sealed flush batches in the aggregator's SQLite: open deltas are sealed under a batch number and
// kept until D1 has committed them. A batch D1 refuses for a data reason is split in halves (fresh
// batch numbers: it was never committed) until the one offending row is alone, and that row is
// quarantined, so it never blocks the rows behind it.
import { fromSql, selectList, SERIES_ROLLUP, TABLE_ROLLUPS, type RollupRow, type RollupSpec } from "../sinks/rollups.js";
import { expandSeries } from "./fold-series.js";
import { clearPacked, OPEN_PACKED_ROWS, packedBatchRows, repackBatch, sealPacked } from "./packed.js";
import type { Store } from "./state.js";

/** Rows sealed into one flush, per rollup: bounds the size of one D1 transaction. */
export const MAX_ROWS_PER_FLUSH = 2000;

/** D1 errors that name the data, not the database: retrying the same rows would fail forever. */
const DATA_ERROR = /SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)|constraint failed|integer overflow|datatype mismatch|too big|too many terms/i;

export function isDataError(err: unknown): boolean {
	return DATA_ERROR.test(err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : String(err));
}

export function flushId(incarnation: string, batch: number): string {
	return `${incarnation}:${batch}`;
}

const OPEN_ROWS = `SELECT ${[...TABLE_ROLLUPS.map((spec) => `(SELECT count(*) FROM ${spec.localTable} WHERE batch = 0)`), OPEN_PACKED_ROWS].join(" + ")} AS n`;

/** Pending rows not yet sealed into a flush (one statement: it runs after every ingest). */
export function openRows(store: Store): number {
	return store.rows<{ n: number }>(OPEN_ROWS)[0]!.n;
}

/** The sealed batches, oldest first: the head is the one to send. */
export function sealedBatches(store: Store): { batch: number; since: number }[] {
	return store.rows<{ batch: number; since: number }>("SELECT batch, since FROM sealed ORDER BY batch");
}

/** The batch to send: the head still sealed from a failed or interrupted flush, else a new one; null when idle. */
export function sealNext(store: Store, now: number): number | null {
	const head = sealedBatches(store)[0];
	if (head) return head.batch;
	if (openRows(store) === 0) return null;
	return store.transact((state) => {
		const batch = state.nextBatch++;
		sealPacked(store, batch);
		for (const spec of TABLE_ROLLUPS) {
			store.exec(
				`UPDATE ${spec.localTable} SET batch = ? WHERE rowid IN (SELECT rowid FROM ${spec.localTable} WHERE batch = 0 LIMIT ?)`,
				batch,
				MAX_ROWS_PER_FLUSH,
			);
		}
		store.exec("INSERT INTO sealed (batch, since) VALUES (?, ?)", batch, state.openSince ?? now);
		if (openRows(store) === 0) state.openSince = null;
		return batch;
	});
}

/** A batch's rows per rollup, as D1 takes them: the series' minutes expanded into their hours and days. */
export function batchRows(store: Store, batch: number, now: number): Map<RollupSpec, RollupRow[]> {
	const rows = new Map([
		...TABLE_ROLLUPS.map((spec): [RollupSpec, RollupRow[]] => [
			spec,
			store.rows(`SELECT ${selectList(spec, false)} FROM ${spec.localTable} WHERE batch = ?`, batch).map((raw) => fromSql(spec, raw)),
		]),
		...packedBatchRows(store, batch),
	]);
	rows.set(SERIES_ROLLUP, expandSeries(rows.get(SERIES_ROLLUP) ?? [], now));
	return rows;
}

/** Drops a batch D1 has committed. Call inside a transaction. */
export function clearBatch(store: Store, batch: number): void {
	for (const spec of TABLE_ROLLUPS) store.exec(`DELETE FROM ${spec.localTable} WHERE batch = ?`, batch);
	clearPacked(store, batch);
	store.exec("DELETE FROM sealed WHERE batch = ?", batch);
}

/**
 * Handles a batch D1 refused for a data reason: two halves under new batch numbers, or, for a
 * single row, its quarantine. Returns the rows quarantined (0 or 1).
 */
export function splitBatch(store: Store, batch: number, error: string, now: number): number {
	return store.transact((state) => {
		const since = store.rows<{ since: number }>("SELECT since FROM sealed WHERE batch = ?", batch)[0]?.since ?? now;
		const tableRows = TABLE_ROLLUPS.flatMap((spec) =>
			store
				.rows<{ rowid: number }>(`SELECT rowid FROM ${spec.localTable!} WHERE batch = ? ORDER BY rowid`, batch)
				.map(({ rowid }) => ({ spec, rowid })),
		);
		const packedRows = [...packedBatchRows(store, batch)].flatMap(([spec, rows]) => rows.map((row) => ({ spec, row })));
		const total = tableRows.length + packedRows.length;
		store.exec("DELETE FROM sealed WHERE batch = ?", batch);
		if (total === 1) {
			let spec: RollupSpec;
			let row: RollupRow;
			if (tableRows.length === 1) {
				const { rowid } = tableRows[0]!;
				spec = tableRows[0]!.spec;
				row = fromSql(spec, store.rows(`SELECT ${selectList(spec, false)} FROM ${spec.localTable!} WHERE rowid = ?`, rowid)[0]!);
				store.exec(`DELETE FROM ${spec.localTable!} WHERE rowid = ?`, rowid);
			} else {
				({ spec, row } = packedRows[0]!);
				clearPacked(store, batch);
			}
			store.exec(
				"INSERT INTO quarantine (flush_id, rollup, row, error, at) VALUES (?, ?, ?, ?, ?)",
				flushId(state.incarnation!, batch),
				spec.name,
				JSON.stringify(row),
				error,
				now,
			);
			state.counters.quarantined_rows++;
			return 1;
		}
		const halves = [state.nextBatch++, state.nextBatch++];
		const half = (i: number) => halves[i < total / 2 ? 0 : 1]!;
		tableRows.forEach(({ spec, rowid }, i) => store.exec(`UPDATE ${spec.localTable!} SET batch = ? WHERE rowid = ?`, half(i), rowid));
		repackBatch(store, batch, packedRows, (i) => half(tableRows.length + i));
		for (const h of halves) store.exec("INSERT INTO sealed (batch, since) VALUES (?, ?)", h, since);
		return 0;
	});
}
