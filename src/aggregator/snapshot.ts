// What the aggregator tells the read side: its unflushed rows in a range, with what a read needs to
// merge them with D1 exactly once, and its counters for /v1/metrics.
import { rowMatches, type KeyFilter } from "../sinks/d1/rollups.js";
import { fromSql, PACKED_ROLLUPS, selectList, TABLE_ROLLUPS, type RollupRow, type RollupSpec } from "../sinks/rollups.js";
import { sealedBatches } from "./batches.js";
import { packedPending } from "./packed.js";
import { outboxPoints } from "./outbox.js";
import { quarantinePending } from "./quarantine.js";
import { spillPending } from "./spill.js";
import type { AggregatorCounters, AggregatorOperationCounts, Store } from "./state.js";

/** The aggregator's unflushed rows in a range, for reads that merge them with D1 exactly once. */
export interface PendingSnapshot {
	incarnation: string | null;
	/** Any batch numbered from here on was sealed after this snapshot. */
	nextBatch: number;
	/** Sealed batches, head (the one being sent) first. */
	sealed: number[];
	rows: Partial<Record<RollupSpec["name"], { batch: number; row: RollupRow }[]>>;
}

export interface AggregatorMetrics {
	counters: AggregatorCounters;
	/** Age of the oldest delta not yet in D1, or null when everything is flushed. */
	oldestUnflushedMs: number | null;
	/** When D1 flushes started failing, or null when they succeed. */
	flushFailingSince: number | null;
	/** Spilled events still waiting to be re-enqueued. */
	spillPending: number;
	/** Quarantined rows not yet stored as dead letters in D1. */
	quarantinePending: number;
	/** Analytics Engine points waiting in the outbox. */
	outboxPoints: number;
}

export type AggregatorOperations = AggregatorOperationCounts & { storageBytes: number };

/**
 * The unflushed rows of `specs` whose time lies in [from, to), and for packed rollups that pass
 * `where`. A synchronous read: one consistent instant.
 */
export function pendingSnapshot(
	store: Store,
	specs: RollupSpec["name"][],
	from: string,
	to: string,
	where: KeyFilter = {},
): PendingSnapshot {
	const packed = PACKED_ROLLUPS.filter((s) => specs.includes(s.name));
	const rows: PendingSnapshot["rows"] =
		packed.length === 0
			? {}
			: packedPending(
					store,
					packed.map((s) => s.name),
					(spec, row) => rowMatches(spec, row, from, to, where),
				);
	for (const spec of TABLE_ROLLUPS.filter((s) => specs.includes(s.name))) {
		rows[spec.name] = store
			.rows<Record<string, SqlStorageValue>>(
				`SELECT batch, ${selectList(spec, false)} FROM ${spec.localTable!} WHERE ${spec.time} >= ? AND ${spec.time} < ?`,
				from,
				to,
			)
			.map((raw) => ({ batch: raw.batch as number, row: fromSql(spec, raw) }));
	}
	const state = store.state;
	return { incarnation: state.incarnation, nextBatch: state.nextBatch, sealed: sealedBatches(store).map((b) => b.batch), rows };
}

export function metricsOf(store: Store, now: number): AggregatorMetrics {
	const state = store.state;
	const since = [state.openSince, ...sealedBatches(store).map((b) => b.since)].filter((t): t is number => t !== null);
	return {
		counters: { ...state.counters },
		oldestUnflushedMs: since.length === 0 ? null : Math.max(0, now - Math.min(...since)),
		flushFailingSince: state.failingSince,
		spillPending: spillPending(store),
		quarantinePending: quarantinePending(store),
		outboxPoints: outboxPoints(store),
	};
}
