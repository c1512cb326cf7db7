// The aggregator's typed state: one object, persisted whole in one SQLite row, so each RPC or
// alarm writes its state (counters included) as a single row, inside the transaction of its work.
import { backoffMs, type BackoffPolicy } from "../shared/backoff.js";

export interface AggregatorCounters {
	consumed: number;
	duplicates: number;
	aggregated: number;
	/** Events refused because their timestamp is older than the dedupe window. */
	expired: number;
	/** Events refused because a new event name or SKU would pass the tenant's cap. */
	capped: number;
	flushed_rows: number;
	flush_failures: number;
	/** Rollup rows D1 refused for a data reason, set aside so they block nothing. */
	quarantined_rows: number;
	spilled: number;
	respooled: number;
	/** Analytics Engine points dropped because the outbox was full (dashboards only; D1 is exact). */
	analytics_dropped: number;
	/** Meter readings skipped: the event matched a meter but lacked its value, or the value was not a number. */
	meter_skipped: number;
	/** Meter readings whose group values were folded into "(other)": the meter's hour had reached its group cap. */
	meter_other: number;
	/** Events whose route was recorded as "(other)": the tenant had reached its cap of distinct routes. */
	route_other: number;
	/** Events written to the raw-event archive in R2. */
	archived: number;
}

/** The platform operations this aggregator caused, counted for the benchmark's cost figures. */
export interface AggregatorOperationCounts {
	rpc_calls: number;
	alarms: number;
	sqlite_rows_written: number;
	d1_rows_written: number;
	analytics_points: number;
}

/** Work that backs off while it fails: D1 flushes, health reports, the outbox, re-enqueues, quarantine and compaction. */
export type RetryKind = "flush" | "health" | "outbox" | "respool" | "quarantine" | "compact" | "archive";

/** Consecutive failures, and when the next attempt may run (0: now). */
export interface Retry {
	failures: number;
	retryAt: number;
}

/** How each kind of work backs off: D1 flushes 2 s, 4 s, 8 s … at most 5 minutes, and so on. */
export const RETRY_POLICIES: Readonly<Record<RetryKind, BackoffPolicy>> = {
	flush: { baseMs: 2_000, capMs: 5 * 60_000 },
	health: { baseMs: 5_000, capMs: 5 * 60_000 },
	outbox: { baseMs: 5_000, capMs: 10 * 60_000 },
	respool: { baseMs: 5_000, capMs: 5 * 60_000 },
	quarantine: { baseMs: 5_000, capMs: 5 * 60_000 },
	compact: { baseMs: 5_000, capMs: 5 * 60_000 },
	archive: { baseMs: 5_000, capMs: 10 * 60_000 },
};

const RETRY_KINDS = Object.keys(RETRY_POLICIES) as RetryKind[];

export interface AggregatorState {
	/** The tenant this storage belongs to, claimed by its first write. */
	tenant: string | null;
	/** Random per storage incarnation: flush ids of a wiped aggregator never collide with old ones. */
	incarnation: string | null;
	nextBatch: number;
	nextChunk: number;
	/**
	 * The number the next sealed archive range takes: it names the range's parts. Archive rows'
	 * own numbers start again once the table is empty, so they cannot name parts.
	 */
	nextArchivePart: number;
	/** When the oldest delta not yet sealed into a flush arrived. */
	openSince: number | null;
	/** The last flush D1 committed and this storage cleared. */
	lastFlushId: string | null;
	/** When D1 flushes started failing, or null. */
	failingSince: number | null;
	/** What the health monitor last acknowledged; when it differs from the truth, a report is due. */
	healthReported: "healthy" | "failing";
	/** Minutes flushed to D1's event_rollups and not yet folded into hours (epoch ms), or null. */
	uncompacted: { oldest: number; newest: number } | null;
	/**
	 * The archive rows being written to R2 (inclusive) and the range's part number, or null: sealed
	 * first, so a retry writes the same parts. A range sealed before part numbers has none.
	 */
	archiveSealed: { first: number; last: number; part?: number } | null;
	retries: Record<RetryKind, Retry>;
	counters: AggregatorCounters;
	operations: AggregatorOperationCounts;
}

export function initialState(): AggregatorState {
	return {
		tenant: null,
		incarnation: null,
		nextBatch: 1,
		nextChunk: 1,
		nextArchivePart: 1,
		openSince: null,
		lastFlushId: null,
		failingSince: null,
		healthReported: "healthy",
		uncompacted: null,
		archiveSealed: null,
		retries: Object.fromEntries(RETRY_KINDS.map((kind) => [kind, { failures: 0, retryAt: 0 }])) as Record<RetryKind, Retry>,
		counters: {
			consumed: 0,
			duplicates: 0,
			aggregated: 0,
			expired: 0,
			capped: 0,
			flushed_rows: 0,
			flush_failures: 0,
			quarantined_rows: 0,
			spilled: 0,
			respooled: 0,
			analytics_dropped: 0,
			meter_skipped: 0,
			meter_other: 0,
			route_other: 0,
			archived: 0,
		},
		operations: { rpc_calls: 0, alarms: 0, sqlite_rows_written: 0, d1_rows_written: 0, analytics_points: 0 },
	};
}

/** State loaded from its row, with any field a newer version added filled from the defaults. */
export function parseState(json: string | undefined): AggregatorState {
	const initial = initialState();
	if (json === undefined) return initial;
	const stored = JSON.parse(json) as Partial<AggregatorState> & Record<string, unknown>;
	// The first version kept each retry as two flat fields (flushFailures and retryAt, …).
	const retries = { ...initial.retries, ...stored.retries };
	for (const kind of RETRY_KINDS) {
		const failures = stored[kind === "flush" ? "flushFailures" : `${kind}Failures`];
		const retryAt = stored[kind === "flush" ? "retryAt" : `${kind}RetryAt`];
		if (typeof failures === "number" && typeof retryAt === "number") retries[kind] = { failures, retryAt };
	}
	return {
		...initial,
		...stored,
		retries,
		counters: { ...initial.counters, ...stored.counters },
		operations: { ...initial.operations, ...stored.operations },
	};
}

/** Records a failure of `kind`: one more, and the next attempt after its backoff. */
export function backOff(state: AggregatorState, kind: RetryKind, now: number): void {
	const retry = state.retries[kind];
	retry.failures++;
	retry.retryAt = now + backoffMs(retry.failures, RETRY_POLICIES[kind]);
}

/** Records a success of `kind`: no failures, nothing to wait for. */
export function recovered(state: AggregatorState, kind: RetryKind): void {
	state.retries[kind] = { failures: 0, retryAt: 0 };
}

/**
 * SQLite access for the aggregator's modules: every statement goes through `exec`, so the rows it
 * writes are counted, and every change goes through `transact`, which saves the state with it.
 */
export class Store {
	state: AggregatorState;
	private unsavedRows = 0;

	constructor(private readonly storage: DurableObjectStorage) {
		this.state = parseState(this.sql.exec<{ value: string }>("SELECT value FROM state WHERE id = 1").toArray()[0]?.value);
	}

	get sql(): SqlStorage {
		return this.storage.sql;
	}

	exec<T extends Record<string, SqlStorageValue>>(query: string, ...binds: unknown[]): SqlStorageCursor<T> {
		const cursor = this.sql.exec<T>(query, ...binds);
		this.unsavedRows += cursor.rowsWritten;
		return cursor;
	}

	/** The rows of a read-only query. */
	rows<T extends Record<string, SqlStorageValue>>(query: string, ...binds: unknown[]): T[] {
		return this.sql.exec<T>(query, ...binds).toArray();
	}

	/**
	 * Runs `work` and saves the state in one SQLite transaction. If anything throws, SQLite rolls
	 * back and the in-memory state is put back as it was, so memory never runs ahead of storage.
	 */
	transact<T>(work: (state: AggregatorState) => T, operations: Partial<AggregatorOperationCounts> = {}): T {
		const before = structuredClone(this.state);
		const rowsBefore = this.unsavedRows;
		try {
			return this.storage.transactionSync(() => {
				const result = work(this.state);
				this.save(operations);
				return result;
			});
		} catch (err) {
			this.state = before;
			this.unsavedRows = rowsBefore;
			throw err;
		}
	}

	/** Adds the operation counts and the rows written since the last save (this one included). */
	private save(operations: Partial<AggregatorOperationCounts>): void {
		const ops = this.state.operations;
		for (const [name, value] of Object.entries(operations) as [keyof AggregatorOperationCounts, number][]) ops[name] += value;
		ops.sqlite_rows_written += this.unsavedRows + 1;
		this.unsavedRows = 0;
		this.sql.exec(
			"INSERT INTO state (id, value) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value",
			JSON.stringify(this.state),
		);
	}
}
