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

/**
 * Appends one slice's packed rows to the open deltas, in as few chunks as their size allows. Each
 * row is serialized once and the chunk's JSON is joined from those strings: this runs on every
 * ingest, and stringifying twice (once to measure, once to write) was a visible share of its CPU.
 * Call inside a transaction.
 */
export function appendPacked(store: Store, folded: Map<RollupSpec, Map<string, RollupRow>>, batch = 0): void {
	let chunk = new Map<RollupSpec["name"], string[]>();
	let rows = 0;
	let chars = 0;
	const write = () => {
		if (rows > 0) store.exec("INSERT INTO pending_packed (batch, rows, data) VALUES (?, ?, ?)", batch, rows, chunkJson(chunk));
		chunk = new Map();
		rows = 0;
		chars = 0;
	};
	for (const spec of PACKED_ROLLUPS) {
		for (const row of folded.get(spec)?.values() ?? []) {
			const text = JSON.stringify(row);
			if (rows > 0 && chars + text.length + 1 > CHUNK_CHARS) write();
			let list = chunk.get(spec.name);
			if (!list) chunk.set(spec.name, (list = []));
			list.push(text);
			rows++;
			chars += text.length + 1;
		}
	}
	write();
}

/** The JSON of a PackedRows object whose rows are already serialized. */
function chunkJson(chunk: Map<RollupSpec["name"], string[]>): string {
	return `{${[...chunk].map(([name, rows]) => `${JSON.stringify(name)}:[${rows.join(",")}]`).join(",")}}`;
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
	// Every chunk's rows first, then one merge per spec, so each key's sketches are decoded and encoded once.
	const all = new Map<RollupSpec, RollupRow[]>(PACKED_ROLLUPS.map((spec) => [spec, []]));
	for (const { data } of store.rows<{ data: string }>("SELECT data FROM pending_packed WHERE batch = ? ORDER BY seq", batch)) {
		for (const [name, rows] of Object.entries(JSON.parse(data) as PackedRows))
			all.get(rollupNamed(name as RollupSpec["name"]))!.push(...rows);
	}
	return new Map(
		[...all].map(([spec, rows]) => {
			const merged = new Map<string, RollupRow>();
			mergeInto(spec, merged, rows);
			return [spec, [...merged.values()]];
		}),
	);
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
