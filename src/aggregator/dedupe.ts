// Exact event-id dedupe that writes a few rows per RPC, not one per event. Ids are stored packed:
// one `seen_chunks` row per ingest per UTC hour of event time, holding that ingest's new ids. A
// compact index in memory per hour partition (loaded on first use) names the chunk that may hold
// an id, and the chunk itself settles it, so no real event is ever taken for a duplicate.
// Partitions older than the dedupe window are deleted whole, by primary key, without an index.
import { utf8Length } from "../shared/bytes.js";
import { DEDUPE_WINDOW_MS, type QueuedEvent } from "../event/model.js";
import { fingerprintOf, IdIndex } from "./id-index.js";
import type { Store } from "./state.js";

export const HOUR_MS = 3_600_000;
/** Copies of one id are recognized when their timestamps are within this of each other. */
export const DEDUPE_TOLERANCE_MS = HOUR_MS / 2;
/** Chunk rows stay far below SQLite's 2 MB row limit. */
const MAX_CHUNK_BYTES = 1_000_000;
/** Ids kept indexed in memory at most (about 11 to 23 bytes each); older partitions are reloaded when needed. */
export const RESIDENT_IDS = 2_000_000;
/** Partitions kept in memory at most, however few ids they hold (an empty one still takes 8 KB). */
const RESIDENT_PARTITIONS = 256;

/** A chunk written in the running transaction, indexed once it commits. */
export interface NewChunk {
	hour: number;
	seq: number;
	ids: string[];
}

/** One `fresh` call's partitions (each loaded and marked used once) and the chunks it has read. */
interface Lookup {
	oldestHour: number;
	indexes: Map<number, IdIndex>;
	chunks: Map<string, Set<string>>;
}

export function hourOf(ms: number): number {
	return Math.floor(ms / HOUR_MS);
}

/** The partitions an id with this timestamp may already be in: its hour, and the nearest neighbour. */
export function partitionsFor(timestamp: number): [number, number] {
	const hour = hourOf(timestamp);
	return [hour, timestamp - hour * HOUR_MS < DEDUPE_TOLERANCE_MS ? hour - 1 : hour + 1];
}

export class IdMemory {
	/** Loaded partitions, least recently used first (Map keeps insertion order). */
	private readonly partitions = new Map<number, IdIndex>();
	private resident = 0;

	constructor(
		private readonly store: Store,
		private readonly residentIds = RESIDENT_IDS,
	) {}

	/** Ids held in memory, and the bytes their indexes take. */
	get memory(): { ids: number; bytes: number; partitions: number } {
		let bytes = 0;
		for (const index of this.partitions.values()) bytes += index.bytes;
		return { ids: this.resident, bytes, partitions: this.partitions.size };
	}

	/** The first copy of each event whose id is not remembered yet, in order. Reads only. */
	fresh(events: QueuedEvent[], oldestHour: number): QueuedEvent[] {
		const seen = new Set<string>();
		const lookup: Lookup = { oldestHour, indexes: new Map(), chunks: new Map() };
		const out: QueuedEvent[] = [];
		for (const event of events) {
			if (seen.has(event.id)) continue;
			seen.add(event.id);
			if (!this.remembered(event, lookup)) out.push(event);
		}
		return out;
	}

	/**
	 * Writes the new ids as chunk rows, one or more per hour of event time. Call inside the ingest
	 * transaction; hand the result to `indexed` once it has committed.
	 */
	remember(events: QueuedEvent[], nextChunk: () => number): NewChunk[] {
		const byHour = new Map<number, string[]>();
		for (const event of events) {
			const hour = hourOf(event.timestamp);
			let ids = byHour.get(hour);
			if (!ids) byHour.set(hour, (ids = []));
			ids.push(event.id);
		}
		const chunks: NewChunk[] = [];
		for (const [hour, ids] of byHour) {
			for (const part of splitByBytes(ids)) {
				const seq = nextChunk();
				this.store.exec("INSERT INTO seen_chunks (hour, seq, ids) VALUES (?, ?, ?)", hour, seq, JSON.stringify(part));
				chunks.push({ hour, seq, ids: part });
			}
		}
		return chunks;
	}

	/**
	 * Adds committed chunks to the partitions in memory (one not loaded reads them from storage when
	 * it is), then evicts the least recently used partitions beyond the budget.
	 */
	indexed(chunks: NewChunk[]): void {
		const touched = new Set<number>();
		for (const { hour, seq, ids } of chunks) {
			const index = this.partitions.get(hour);
			if (!index) continue;
			for (const id of ids) index.add(id, seq);
			this.resident += ids.length;
			touched.add(hour);
		}
		for (const [hour, index] of this.partitions) {
			if (this.resident <= this.residentIds && this.partitions.size <= RESIDENT_PARTITIONS) break;
			if (touched.has(hour)) continue;
			this.partitions.delete(hour);
			this.resident -= index.size;
		}
	}

	/** Deletes every partition older than `oldestHour`, in storage and in memory. */
	prune(oldestHour: number): void {
		this.store.exec("DELETE FROM seen_chunks WHERE hour < ?", oldestHour);
		for (const [hour, index] of this.partitions) {
			if (hour >= oldestHour) continue;
			this.partitions.delete(hour);
			this.resident -= index.size;
		}
	}

	/** Deletes, in its own transaction, every partition whose hour has left the dedupe window at `now`. */
	pruneWindow(now: number): void {
		const oldest = hourOf(now - DEDUPE_WINDOW_MS);
		const stored = this.oldestHour();
		if (stored !== null && stored < oldest) this.store.transact(() => this.prune(oldest));
	}

	/** The oldest stored partition, or null. */
	oldestHour(): number | null {
		return this.store.rows<{ hour: number | null }>("SELECT min(hour) AS hour FROM seen_chunks")[0]?.hour ?? null;
	}

	private remembered(event: QueuedEvent, lookup: Lookup): boolean {
		const fingerprint = fingerprintOf(event.id);
		for (const hour of partitionsFor(event.timestamp)) {
			if (hour < lookup.oldestHour) continue;
			let index = lookup.indexes.get(hour);
			if (!index) lookup.indexes.set(hour, (index = this.load(hour)));
			for (const seq of index.candidates(event.id, fingerprint)) {
				if (this.chunkIds(hour, seq, lookup.chunks).has(event.id)) return true;
			}
		}
		return false;
	}

	/** A partition's index, loaded from its chunks on first use, and marked most recently used. */
	private load(hour: number): IdIndex {
		let index = this.partitions.get(hour);
		if (index) {
			this.partitions.delete(hour);
		} else {
			index = new IdIndex();
			for (const chunk of this.store.rows<{ seq: number; ids: string }>("SELECT seq, ids FROM seen_chunks WHERE hour = ?", hour)) {
				for (const id of JSON.parse(chunk.ids) as string[]) index.add(id, chunk.seq);
			}
			this.resident += index.size;
		}
		this.partitions.set(hour, index);
		return index;
	}

	private chunkIds(hour: number, seq: number, cache: Map<string, Set<string>>): Set<string> {
		const key = `${hour}:${seq}`;
		let ids = cache.get(key);
		if (!ids) {
			const row = this.store.rows<{ ids: string }>("SELECT ids FROM seen_chunks WHERE hour = ? AND seq = ?", hour, seq)[0];
			cache.set(key, (ids = new Set(row ? (JSON.parse(row.ids) as string[]) : [])));
		}
		return ids;
	}
}

/** Splits ids into JSON arrays of at most MAX_CHUNK_BYTES of UTF-8 (usually one, serialized once). */
function splitByBytes(ids: string[]): string[][] {
	if (utf8Length(JSON.stringify(ids)) <= MAX_CHUNK_BYTES) return [ids];
	const parts: string[][] = [];
	let current: string[] = [];
	let bytes = 2;
	for (const id of ids) {
		const size = utf8Length(JSON.stringify(id)) + 1;
		if (current.length > 0 && bytes + size > MAX_CHUNK_BYTES) {
			parts.push(current);
			current = [];
			bytes = 2;
		}
		current.push(id);
		bytes += size;
	}
	if (current.length > 0) parts.push(current);
	return parts;
}
