// One SQLite-backed Durable Object per tenant: dedupes event ids, rolls events up, and flushes the
// rollups to D1 (exactly once, via the flush ledger) and then to Analytics Engine. This class is
// the RPC surface and the alarm; each concern lives in its own module beside it.
import { DurableObject } from "cloudflare:workers";
import superjson from "superjson";
import { applyFlush, compactEventMinutes, insertDeadLetters, type FlushBatch, type NewDeadLetter } from "../sinks/d1/queries.js";
import { DEDUPE_WINDOW_MS, type QueuedEvent } from "../event/model.js";
import { HEALTH_MONITOR } from "../sinks/health-monitor.js";
import { backoffMs } from "../shared/backoff.js";
import { toDataPoint, writeDataPoints, type DataPoint } from "../sinks/analytics.js";
import { nextAlarm } from "./alarm.js";
import { hourOf, HOUR_MS, IdMemory } from "./dedupe.js";
import { batchRows, clearBatch, flushId, isDataError, openRows, quarantinedRows, sealedBatches, sealNext, splitBatch } from "./flush.js";
import { addToOpen, fold } from "./fold.js";
import { migrate } from "./local-schema.js";
import { NameRegistry, skuName, type NameKind } from "./names.js";
import { appendPoints, drainOutbox, outboxPoints } from "./outbox.js";
import { EVENT_ROLLUP, fromSql, ROLLUPS, selectList, type RollupRow, type RollupSpec } from "../sinks/rollups.js";
import { hasSpill, respool, spillPending, storeSpill } from "./spill.js";
import { Store, type AggregatorCounters, type AggregatorOperationCounts } from "./state.js";

export interface RefusedEvent {
	id: string;
	reason: string;
}

export interface IngestResult {
	accepted: number;
	duplicates: number;
	/** Events not counted, with why: the consumer dead-letters them, so none is lost silently. */
	refused: RefusedEvent[];
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

/** The aggregator's unflushed rows in a range, for reads that merge them with D1 exactly once. */
export interface PendingSnapshot {
	incarnation: string | null;
	/** Any batch numbered from here on was sealed after this snapshot. */
	nextBatch: number;
	/** Sealed batches, head (the one being sent) first. */
	sealed: number[];
	rows: Partial<Record<RollupSpec["name"], { batch: number; row: RollupRow }[]>>;
}

/** Where a flush writes. The aggregator's own seam: tests wrap these to inject faults. */
export interface FlushSinks {
	d1(tenant: string, batch: FlushBatch): Promise<boolean>;
	analytics(points: DataPoint[]): number;
	deadLetters(rows: NewDeadLetter[]): Promise<void>;
}

/** Flushes one alarm runs before it yields and re-arms. */
const MAX_FLUSHES_PER_ALARM = 10;
/** D1 flush retries: 2 s, 4 s, 8 s … at most 5 minutes. */
export const FLUSH_BACKOFF = { baseMs: 2_000, capMs: 5 * 60_000 } as const;
const REPORT_BACKOFF = { baseMs: 5_000, capMs: 5 * 60_000 } as const;
/** Event stats stay per minute in D1 this long, then are folded into hours. */
export const MINUTE_RETENTION_MS = 7 * 86_400_000;
export const REFUSED_EXPIRED = "expired: the timestamp is older than the dedupe window, so a copy of it may already have been counted";

export class TenantAggregator extends DurableObject<Env> {
	private store!: Store;
	private ids!: IdMemory;
	private names!: NameRegistry;
	private closed!: Set<string>;
	/** Serializes flushes: an alarm and a /v1/flush call must not seal or send the same batch twice. */
	private flushing: Promise<unknown> = Promise.resolve();
	readonly sinks: FlushSinks;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.sinks = {
			d1: (tenant, batch) => applyFlush(env.DB, tenant, batch, new Date().toISOString()),
			analytics: (points) => writeDataPoints(env.ANALYTICS, points),
			deadLetters: (rows) => insertDeadLetters(env.DB, rows),
		};
		void ctx.blockConcurrencyWhile(async () => {
			migrate(ctx.storage);
			this.store = new Store(ctx.storage);
			this.ids = new IdMemory(this.store);
			this.names = new NameRegistry(this.store, { event: positive(env.MAX_EVENT_NAMES, 1000), sku: positive(env.MAX_SKUS, 1000) });
			this.closed = new Set(this.store.rows<{ period: string }>("SELECT period FROM closed_periods").map((row) => row.period));
		});
	}

	/**
	 * Takes one tenant's slice of a queue batch. Everything is durable when this resolves: the
	 * consumer acks only then. Ids already remembered are dropped, so a redelivered message or a
	 * retried RPC changes nothing; events that cannot be counted come back as `refused`.
	 */
	async ingest(tenant: string, events: QueuedEvent[]): Promise<IngestResult> {
		const now = Date.now();
		const refused: RefusedEvent[] = [];
		const inWindow = events.filter((event) => {
			if (event.timestamp >= now - DEDUPE_WINDOW_MS) return true;
			if (!refused.some((r) => r.id === event.id)) refused.push({ id: event.id, reason: REFUSED_EXPIRED });
			return false;
		});
		const fresh = this.ids.fresh(inWindow, hourOf(now - DEDUPE_WINDOW_MS));
		const names = { event: fresh.map((event) => event.event), sku: fresh.flatMap((event) => (event.usage ? [skuName(event.usage)] : [])) };
		let outcome;
		try {
			outcome = this.store.transact(
				(state) => {
					this.claimTenant(tenant);
					const admission = this.names.admit(names);
					const admitted = fresh.filter((event) => NameRegistry.allows(admission, event));
					for (const event of fresh) if (!NameRegistry.allows(admission, event)) refused.push({ id: event.id, reason: this.cappedReason() });
					const chunks = this.ids.remember(admitted, () => state.nextChunk++);
					addToOpen(this.store, fold(admitted, this.closed, now));
					const duplicates = inWindow.length - fresh.length;
					const counters = state.counters;
					counters.consumed += events.length;
					counters.duplicates += duplicates;
					counters.aggregated += admitted.length;
					counters.expired += events.length - inWindow.length;
					counters.capped += fresh.length - admitted.length;
					if (admitted.length > 0 && state.openSince === null) state.openSince = now;
					return { admission, chunks, result: { accepted: admitted.length, duplicates, refused } };
				},
				{ rpc_calls: 1 },
			);
		} catch (err) {
			this.names.reset();
			throw err;
		}
		this.ids.indexed(outcome.chunks);
		this.names.commit(outcome.admission);
		await this.armAfterIngest(now);
		return outcome.result;
	}

	/**
	 * Registers event names and SKUs for the producer before it answers, so a request that would
	 * pass the tenant's caps gets a 4xx. Returns the names that may be used; with `allOrNothing`
	 * (a request refused whole) new ones are registered only if they all fit.
	 */
	async admitNames(tenant: string, names: Record<NameKind, string[]>, allOrNothing = false): Promise<Record<NameKind, string[]>> {
		let admission;
		try {
			admission = this.store.transact(() => {
				this.checkOwner(tenant);
				return this.names.admit(names, allOrNothing);
			}, { rpc_calls: 1 });
		} catch (err) {
			this.names.reset();
			throw err;
		}
		this.names.commit(admission);
		return { event: [...admission.admitted.event], sku: [...admission.admitted.sku] };
	}

	/**
	 * Keeps events the producer could not enqueue, durably, and re-enqueues them from the alarm.
	 * They go back through the queue (not straight into the rollups) so every event takes one path.
	 */
	async spill(tenant: string, events: QueuedEvent[]): Promise<void> {
		const now = Date.now();
		this.store.transact(() => {
			this.claimTenant(tenant);
			storeSpill(this.store, events, now);
		}, { rpc_calls: 1 });
		const current = await this.ctx.storage.getAlarm();
		if (current === null || current > now) await this.ctx.storage.setAlarm(now);
	}

	/**
	 * Closes a billing month: usage for it that arrives from now on is booked as an adjustment into
	 * the month it arrives in. Then everything held is flushed, so D1 has the month complete.
	 */
	async closePeriod(tenant: string, period: string): Promise<number> {
		this.store.transact(() => {
			this.claimTenant(tenant);
			this.store.exec("INSERT INTO closed_periods (period) VALUES (?) ON CONFLICT DO NOTHING", period);
		}, { rpc_calls: 1 });
		this.closed.add(period);
		return this.flush();
	}

	/** The unflushed rows whose time lies in [from, to), with what a read needs to merge them exactly once. */
	async pending(specs: RollupSpec["name"][], from: string, to: string): Promise<PendingSnapshot> {
		const rows: PendingSnapshot["rows"] = {};
		for (const spec of ROLLUPS.filter((s) => specs.includes(s.name))) {
			rows[spec.name] = this.store
				.rows<Record<string, SqlStorageValue>>(`SELECT batch, ${selectList(spec, false)} FROM ${spec.localTable} WHERE ${spec.time} >= ? AND ${spec.time} < ?`, from, to)
				.map((raw) => ({ batch: raw.batch as number, row: fromSql(spec, raw) }));
		}
		const state = this.store.state;
		return { incarnation: state.incarnation, nextBatch: state.nextBatch, sealed: sealedBatches(this.store).map((b) => b.batch), rows };
	}

	/** This tenant's pipeline counters, for /v1/metrics and /v1/health. */
	async metrics(): Promise<AggregatorMetrics> {
		const state = this.store.state;
		const since = [state.openSince, ...sealedBatches(this.store).map((b) => b.since)].filter((t): t is number => t !== null);
		return {
			counters: { ...state.counters },
			oldestUnflushedMs: since.length === 0 ? null : Math.max(0, Date.now() - Math.min(...since)),
			flushFailingSince: state.failingSince,
			spillPending: spillPending(this.store),
			quarantinePending: this.store.rows<{ n: number }>("SELECT count(*) AS n FROM quarantine")[0]!.n,
			outboxPoints: outboxPoints(this.store),
		};
	}

	/** The platform operations this aggregator caused, and its storage size, for the benchmark. */
	async operations(): Promise<AggregatorOperations> {
		return { ...this.store.state.operations, storageBytes: this.ctx.storage.sql.databaseSize };
	}

	/** Flushes everything this aggregator holds to D1 and Analytics Engine; returns rows flushed. */
	async flush(): Promise<number> {
		try {
			return await this.exclusive(async () => {
				let rows = 0;
				for (;;) {
					const count = await this.flushOnce();
					if (count === null) return rows;
					rows += count;
				}
			});
		} finally {
			drainOutbox(this.store, (points) => this.sinks.analytics(points), Date.now());
			this.store.transact(() => undefined, { rpc_calls: 1 });
			await this.armAfterAlarm(Date.now());
		}
	}

	override async alarm(): Promise<void> {
		const now = Date.now();
		try {
			// An alarm that fires before a D1 retry's backoff ends leaves the sealed batch alone.
			if (now >= this.store.state.retryAt) {
				await this.exclusive(async () => {
					for (let i = 0; i < MAX_FLUSHES_PER_ALARM; i++) if ((await this.flushOnce()) === null) break;
				});
			}
		} catch (err) {
			// The deltas stay sealed; armAfterAlarm retries after the backoff this failure set.
			console.error("flush to D1 failed", err);
		}
		this.prune(now);
		await this.compact(now);
		await this.storeQuarantine(now);
		drainOutbox(this.store, (points) => this.sinks.analytics(points), now);
		if (this.store.state.tenant !== null) await respool(this.store, this.env.EVENTS, now);
		if (now >= this.store.state.healthRetryAt) await this.reportHealth(now);
		this.store.transact(() => undefined, { alarms: 1 });
		await this.armAfterAlarm(now);
	}

	/** Seals (or resumes) one batch and writes it to D1. Returns rows flushed, or null if idle. */
	private async flushOnce(): Promise<number | null> {
		const now = Date.now();
		const batch = sealNext(this.store, now);
		if (batch === null) return null;
		const tenant = this.store.state.tenant!;
		const rows = batchRows(this.store, batch);
		const id = flushId(this.store.state.incarnation!, batch);
		const flush: FlushBatch = { flushId: id, rows, stats: { rowsWritten: 0 } };
		try {
			await this.sinks.d1(tenant, flush);
		} catch (err) {
			if (isDataError(err)) {
				// D1's answer will not change for these rows: narrow it down, never block the rest.
				const quarantined = splitBatch(this.store, batch, String(err), now);
				console.error(quarantined ? "QUARANTINED: D1 refused a rollup row" : "D1 refused a flush for a data reason; split in halves", { tenant, flushId: id }, err);
				return 0;
			}
			this.store.transact((state) => {
				state.flushFailures++;
				state.retryAt = now + backoffMs(state.flushFailures, FLUSH_BACKOFF);
				state.failingSince ??= now;
				state.counters.flush_failures++;
			});
			await this.reportHealth(now, true);
			throw err;
		}
		// D1 has the batch: only now may the local copy go. Dashboards get their points from an
		// outbox in the same transaction, so an Analytics Engine failure cannot touch D1's result.
		let count = 0;
		this.store.transact(
			(state) => {
				clearBatch(this.store, batch);
				const points: DataPoint[] = [];
				for (const [spec, specRows] of rows) {
					for (const row of specRows) points.push(toDataPoint(tenant, spec, row));
					count += specRows.length;
				}
				appendPoints(this.store, points);
				for (const row of rows.get(EVENT_ROLLUP)!) {
					const minute = Date.parse(row.minute as string);
					state.uncompacted = { oldest: Math.min(minute, state.uncompacted?.oldest ?? minute), newest: Math.max(minute, state.uncompacted?.newest ?? minute) };
				}
				state.counters.flushed_rows += count;
				state.lastFlushId = id;
				state.flushFailures = 0;
				state.retryAt = 0;
				state.failingSince = null;
			},
			{ d1_rows_written: flush.stats?.rowsWritten ?? 0 },
		);
		await this.reportHealth(now);
		return count;
	}

	/**
	 * Tells the health monitor when flushes start failing (and each further failure) and when they
	 * recover. The state remembers what the monitor acknowledged, so a report that does not get
	 * through is retried from the alarm, and health never sticks at a state that has passed.
	 */
	private async reportHealth(now: number, force = false): Promise<void> {
		const state = this.store.state;
		const truth = state.failingSince === null ? "healthy" : "failing";
		if (!force && truth === state.healthReported) return;
		try {
			const monitor = this.env.HEALTH.getByName(HEALTH_MONITOR);
			if (truth === "failing") await monitor.flushFailing(state.tenant!, state.failingSince!, state.flushFailures);
			else await monitor.flushRecovered(state.tenant!);
		} catch (err) {
			console.error("health monitor unreachable; the report is retried", err);
			this.store.transact((s) => {
				s.healthFailures++;
				s.healthRetryAt = now + backoffMs(s.healthFailures, REPORT_BACKOFF);
			});
			return;
		}
		this.store.transact((s) => {
			s.healthReported = truth;
			s.healthFailures = 0;
			s.healthRetryAt = 0;
		});
	}

	/** Deletes remembered ids whose hour has left the dedupe window. */
	private prune(now: number): void {
		const oldest = hourOf(now - DEDUPE_WINDOW_MS);
		const stored = this.ids.oldestHour();
		if (stored !== null && stored < oldest) this.store.transact(() => this.ids.prune(oldest));
	}

	/** Folds D1's event minutes older than MINUTE_RETENTION_MS into hours, for this tenant. */
	private async compact(now: number): Promise<void> {
		const state = this.store.state;
		const due = this.compactAt();
		if (due === null || now < due || now < state.compactRetryAt) return;
		const cutoff = now - MINUTE_RETENTION_MS - ((now - MINUTE_RETENTION_MS) % HOUR_MS);
		let written: number;
		try {
			written = await compactEventMinutes(this.env.DB, state.tenant!, new Date(cutoff).toISOString());
		} catch (err) {
			console.error("folding event minutes into hours failed; retried later", err);
			this.store.transact((s) => {
				s.compactFailures++;
				s.compactRetryAt = now + backoffMs(s.compactFailures, REPORT_BACKOFF);
			});
			return;
		}
		this.store.transact(
			(s) => {
				s.uncompacted = s.uncompacted!.newest < cutoff ? null : { oldest: cutoff, newest: s.uncompacted!.newest };
				s.compactFailures = 0;
				s.compactRetryAt = 0;
			},
			{ d1_rows_written: written },
		);
	}

	private compactAt(): number | null {
		const oldest = this.store.state.uncompacted?.oldest;
		return oldest === undefined ? null : oldest - (oldest % HOUR_MS) + HOUR_MS + MINUTE_RETENTION_MS;
	}

	/** Stores quarantined rows as dead letters in D1, where the admin API lists them; kept here until D1 has them. */
	private async storeQuarantine(now: number): Promise<void> {
		const state = this.store.state;
		if (now < state.quarantineRetryAt) return;
		const rows = quarantinedRows(this.store, 100);
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
			await this.sinks.deadLetters(letters);
		} catch (err) {
			console.error("storing quarantined rows in D1 failed; kept for a later alarm", err);
			this.store.transact((s) => {
				s.quarantineFailures++;
				s.quarantineRetryAt = now + backoffMs(s.quarantineFailures, REPORT_BACKOFF);
			});
			return;
		}
		this.store.transact((s) => {
			this.store.exec("DELETE FROM quarantine WHERE id <= ?", rows[rows.length - 1]!.id);
			s.quarantineFailures = 0;
			s.quarantineRetryAt = 0;
		});
	}

	/** Arms the flush alarm if none is set, or pulls it forward once enough rows are pending. */
	private async armAfterIngest(now: number): Promise<void> {
		const current = await this.ctx.storage.getAlarm();
		const full = openRows(this.store) >= this.maxRows;
		// Never later than the flush interval (an alarm set only for pruning may be days away),
		// and never before a D1 retry's backoff ends.
		const due = Math.max(full ? now : now + this.intervalMs, this.store.state.retryAt);
		if (current === null || due < current) await this.ctx.storage.setAlarm(due);
	}

	/** Re-arms only if work remains. */
	private async armAfterAlarm(now: number): Promise<void> {
		const state = this.store.state;
		const oldest = this.ids.oldestHour();
		const due = nextAlarm({
			now,
			sealed: sealedBatches(this.store).length > 0,
			openRows: openRows(this.store),
			maxRows: this.maxRows,
			intervalMs: this.intervalMs,
			retryAt: state.retryAt,
			outboxPending: outboxPoints(this.store) > 0,
			outboxRetryAt: state.outboxRetryAt,
			spillPending: hasSpill(this.store),
			respoolRetryAt: state.respoolRetryAt,
			quarantinePending: this.store.rows("SELECT 1 FROM quarantine LIMIT 1").length > 0,
			quarantineRetryAt: state.quarantineRetryAt,
			healthPending: (state.failingSince === null ? "healthy" : "failing") !== state.healthReported,
			healthRetryAt: state.healthRetryAt,
			pruneAt: oldest === null ? null : (oldest + 1) * HOUR_MS + DEDUPE_WINDOW_MS,
			compactAt: this.compactAt(),
			compactRetryAt: state.compactRetryAt,
		});
		if (due === null) await this.ctx.storage.deleteAlarm();
		else await this.ctx.storage.setAlarm(due);
	}

	private async exclusive<T>(work: () => Promise<T>): Promise<T> {
		const run = this.flushing.then(work, work);
		this.flushing = run.catch(() => undefined);
		return run;
	}

	/** An aggregator belongs to the tenant it is named for; a call for another is a routing bug. */
	private checkOwner(tenant: string): void {
		const owner = this.store.state.tenant ?? this.ctx.id.name ?? null;
		if (owner !== null && owner !== tenant) throw new Error(`aggregator for ${owner} was sent events for ${tenant}`);
	}

	/** Checks the owner, and on the first write claims this storage for the tenant. */
	private claimTenant(tenant: string): void {
		this.checkOwner(tenant);
		const state = this.store.state;
		if (state.tenant === null) {
			state.tenant = tenant;
			// Flush ids are unique per storage incarnation, so a wiped aggregator can never
			// collide with the flush ledger an earlier incarnation left in D1.
			state.incarnation = crypto.randomUUID();
		}
	}

	private cappedReason(): string {
		return `capped: a new event name or SKU would pass the tenant's cap (${positive(this.env.MAX_EVENT_NAMES, 1000)} event names, ${positive(this.env.MAX_SKUS, 1000)} SKUs)`;
	}

	private get intervalMs(): number {
		return positive(this.env.FLUSH_INTERVAL_MS, 10_000);
	}

	private get maxRows(): number {
		return positive(this.env.FLUSH_MAX_ROWS, 1000);
	}
}

function positive(value: string | undefined, fallback: number): number {
	const parsed = Number(value);
	return Number.isFinite(parsed) && parsed > 0 ? parsed : fallback;
}
