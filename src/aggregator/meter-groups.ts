// The group-by cardinality cap: a meter keeps at most `cap` distinct group-value tuples per UTC
// hour; later tuples of that hour are folded into "(other)" and counted. Without it, a group-by on
// a request id would make one D1 row per event. Known tuples are remembered in `meter_groups`:
// one row per hour for each ingest that saw new ones (all meters' new tuples together, so ten
// meters cost one row, not ten), and in memory for recent hours.
import type { Store } from "./state.js";

const HOUR_MS = 3_600_000;
/** Hours of tuples held in memory at once; older ones are reloaded from SQLite when a late event needs them. */
const RESIDENT_HOURS = 64;

export const OTHER = "(other)";

/** One hour's known tuples, per meter id. */
type HourTuples = Map<number, Set<string>>;

export class MeterGroups {
	/** hour → its known tuples, in order of load (oldest first). */
	private known = new Map<number, HourTuples>();
	/** Tuples added by the current ingest, per hour and meter, saved by `save` in its transaction. */
	private added = new Map<number, Record<number, string[]>>();

	constructor(
		private readonly store: Store,
		private readonly cap: number,
	) {}

	/** Whether a tuple may be recorded for the meter in the hour of `ms`: known, or new within the cap. */
	admit(meter: number, ms: number, tuple: string): boolean {
		const hour = Math.floor(ms / HOUR_MS);
		const byMeter = this.load(hour);
		let tuples = byMeter.get(meter);
		if (!tuples) byMeter.set(meter, (tuples = new Set()));
		if (tuples.has(tuple)) return true;
		if (tuples.size >= this.cap) return false;
		tuples.add(tuple);
		let added = this.added.get(hour);
		if (!added) this.added.set(hour, (added = {}));
		(added[meter] ??= []).push(tuple);
		return true;
	}

	/** Saves the tuples this ingest added, one row per hour. Call inside the ingest's transaction. */
	save(): void {
		for (const [hour, byMeter] of this.added) {
			this.store.exec(
				"INSERT INTO meter_groups (hour, seq, groups) VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM meter_groups WHERE hour = ?), ?)",
				hour,
				hour,
				JSON.stringify(byMeter),
			);
		}
		this.added.clear();
	}

	/** Forgets memory after a rolled-back ingest: what it admitted was never saved. */
	reset(): void {
		this.known.clear();
		this.added.clear();
	}

	/** Deletes the tuples of hours no event can reach any more (older than the dedupe window), in its own transaction when there are any. */
	prune(beforeMs: number): void {
		const cutoff = Math.floor(beforeMs / HOUR_MS);
		const oldest = this.store.rows<{ hour: number | null }>("SELECT min(hour) AS hour FROM meter_groups")[0]?.hour ?? null;
		if (oldest === null || oldest >= cutoff) return;
		this.store.transact(() => this.store.exec("DELETE FROM meter_groups WHERE hour < ?", cutoff));
		this.known.clear();
	}

	private load(hour: number): HourTuples {
		let byMeter = this.known.get(hour);
		if (byMeter) return byMeter;
		byMeter = new Map();
		for (const row of this.store.rows<{ groups: string }>("SELECT groups FROM meter_groups WHERE hour = ? ORDER BY seq", hour)) {
			for (const [meter, tuples] of Object.entries(JSON.parse(row.groups) as Record<string, string[]>)) {
				let known = byMeter.get(Number(meter));
				if (!known) byMeter.set(Number(meter), (known = new Set()));
				for (const tuple of tuples) known.add(tuple);
			}
		}
		if (this.known.size >= RESIDENT_HOURS) {
			// The oldest loaded hour goes, unless this ingest added to it and has not saved yet.
			for (const key of this.known.keys()) {
				if (this.added.has(key)) continue;
				this.known.delete(key);
				break;
			}
		}
		this.known.set(hour, byMeter);
		return byMeter;
	}
}
