// The packed rollups' deltas (meters, series): one SQLite row per ingest holding all of that
// slice's folded rows as JSON, instead of one upserted row per key. A slice of ten meters with
// group-bys touches thousands of keys; packed, it costs one row write, and rows merge once, in
// memory, when their batch is flushed or read.
import { mergeInto, PACKED_ROLLUPS, rollupNamed, rowKey, type RollupRow, type RollupSpec } from "../sinks/rollups.js";
import type { Store } from "./state.js";

/** One chunk's JSON stays below this many characters (SQLite rows may hold 2 MB). */
const CHUNK_CHARS = 900_000;
/** Chunks sealed into one flush: bounds the rows one D1 transaction merges. */
export const MAX_CHUNKS_PER_FLUSH = 64;

type PackedRows = Partial<Record<RollupSpec["name"], RollupRow[]>>;

/** Appends one slice's packed rows to the open deltas, in as few chunks as their size allows. Call inside a transaction. */
export function appendPacked(store: Store, folded: Map<RollupSpec, Map<string, RollupRow>>, batch = 0): void {
	let chunk: PackedRows = {};
	let rows = 0;
	let chars = 0;
	const write = () => {
		if (rows > 0) store.exec("INSERT INTO pending_packed (batch, rows, data) VALUES (?, ?, ?)", batch, rows, JSON.stringify(chunk));
		chunk = {};
		rows = 0;
		chars = 0;
	};
	for (const spec of PACKED_ROLLUPS) {
		for (const row of folded.get(spec)?.values() ?? []) {
			const size = JSON.stringify(row).length + 1;
			if (rows > 0 && chars + size > CHUNK_CHARS) write();
			(chunk[spec.name] ??= []).push(row);
			rows++;
			chars += size;
		}
	}
	write();
}

/**
 * Open (unsealed) chunks, each counted as one pending row toward FLUSH_MAX_ROWS: a chunk is one
 * row of SQLite, and its keys mostly repeat the previous chunk's, so counting them would flush
 * far more often than the merged rows need.
 */
export const OPEN_PACKED_ROWS = "(SELECT count(*) FROM pending_packed WHERE batch = 0)";

/** Seals the oldest open chunks into `batch`. Call inside a transaction. */
export function sealPacked(store: Store, batch: number): void {
	store.exec(
		"UPDATE pending_packed SET batch = ? WHERE seq IN (SELECT seq FROM pending_packed WHERE batch = 0 ORDER BY seq LIMIT ?)",
		batch,
		MAX_CHUNKS_PER_FLUSH,
	);
}

/** A batch's packed rows, merged per key. */
export function packedBatchRows(store: Store, batch: number): Map<RollupSpec, RollupRow[]> {
	const merged = new Map<RollupSpec, Map<string, RollupRow>>(PACKED_ROLLUPS.map((spec) => [spec, new Map()]));
	for (const { data } of store.rows<{ data: string }>("SELECT data FROM pending_packed WHERE batch = ? ORDER BY seq", batch)) {
		for (const [name, rows] of Object.entries(JSON.parse(data) as PackedRows)) {
			const spec = rollupNamed(name as RollupSpec["name"]);
			mergeInto(spec, merged.get(spec)!, rows);
		}
	}
	return new Map([...merged].map(([spec, rows]) => [spec, [...rows.values()]]));
}

export function clearPacked(store: Store, batch: number): void {
	store.exec("DELETE FROM pending_packed WHERE batch = ?", batch);
}

/** Moves a batch's packed rows into new chunks under other batches (a split): `batchOf` picks each row's. */
export function repackBatch(
	store: Store,
	batch: number,
	rows: { spec: RollupSpec; row: RollupRow }[],
	batchOf: (i: number) => number,
): void {
	clearPacked(store, batch);
	const byBatch = new Map<number, Map<RollupSpec, Map<string, RollupRow>>>();
	rows.forEach(({ spec, row }, i) => {
		const target = batchOf(i);
		let folded = byBatch.get(target);
		if (!folded) byBatch.set(target, (folded = new Map()));
		let specRows = folded.get(spec);
		if (!specRows) folded.set(spec, (specRows = new Map()));
		specRows.set(rowKey(spec, row), row);
	});
	for (const [target, folded] of byBatch) appendPacked(store, folded, target);
}

/**
 * Every batch's packed rows of `specs` that pass `keep`, unmerged, with their batch: what a read
 * merges with D1. Reads every pending chunk: they hold only what awaits a flush.
 */
export function packedPending(
	store: Store,
	specs: RollupSpec["name"][],
	keep: (spec: RollupSpec, row: RollupRow) => boolean,
): Partial<Record<RollupSpec["name"], { batch: number; row: RollupRow }[]>> {
	const out: Partial<Record<RollupSpec["name"], { batch: number; row: RollupRow }[]>> = {};
	for (const name of specs) out[name] = [];
	for (const { batch, data } of store.rows<{ batch: number; data: string }>("SELECT batch, data FROM pending_packed ORDER BY seq")) {
		for (const [name, rows] of Object.entries(JSON.parse(data) as PackedRows)) {
			const target = out[name as RollupSpec["name"]];
			if (!target) continue;
			const spec = rollupNamed(name as RollupSpec["name"]);
			for (const row of rows) if (keep(spec, row)) target.push({ batch, row });
		}
	}
	return out;
}
