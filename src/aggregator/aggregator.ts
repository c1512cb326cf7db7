// One SQLite-backed Durable Object per tenant: dedupes event ids, rolls events up, and flushes
// the rollups to D1 (exactly once, via the flush ledger) and then to Analytics Engine.
import { DurableObject } from "cloudflare:workers";
import { applyFlush, type FlushBatch } from "../db/queries";
import { enqueueEvents } from "../producer/pack";
import type { QueuedEvent } from "../events/schema";
import { toDataPoint, writeDataPoints, MAX_POINTS_PER_INVOCATION, type DataPoint } from "../sinks/analytics";
import { HEALTH_MONITOR, type HealthMonitor } from "../health/monitor";
import { migrate } from "./local-schema";
import { bucketStart, columnsOf, EVENT_ROLLUP, onConflictMerge, ROLLUPS, USAGE_ROLLUP, type RollupRow, type RollupSpec } from "./rollups";

export interface IngestResult {
	accepted: number;
	duplicates: number;
}

export type AggregatorCounters = {
	consumed: number;
	duplicates: number;
	aggregated: number;
	flushed_rows: number;
	flush_failures: number;
	spilled: number;
	respooled: number;
};

export type AggregatorOperations = {
	rpc_calls: number;
	alarms: number;
	sqlite_rows_written: number;
	d1_rows_written: number;
	analytics_points: number;
	storageBytes: number;
};

export interface AggregatorMetrics {
	counters: AggregatorCounters;
	/** Age of the oldest delta not yet in D1, or null when everything is flushed. */
	oldestUnflushedMs: number | null;
	/** When D1 flushes started failing, or null when they succeed. */
	flushFailingSince: number | null;
	/** Spilled events still waiting to be re-enqueued. */
	spillPending: number;
}

/** Rows sealed into one flush, per rollup: bounds the size of one D1 transaction. */
const MAX_ROWS_PER_FLUSH = 2000;
/** Flushes one alarm runs before it yields and re-arms. */
const MAX_FLUSHES_PER_ALARM = 10;
const RETRY_BASE_MS = 1000;
const RETRY_CAP_MS = 5 * 60_000;
/** Spilled chunks re-enqueued per alarm, and the pause after a failed re-enqueue. */
const RESPOOL_PER_ALARM = 20;
const RESPOOL_RETRY_MS = 5000;

/** Where a flush writes. The aggregator's own seam: tests wrap these to inject faults. */
export interface FlushSinks {
	d1(tenant: string, batch: FlushBatch): Promise<boolean>;
	analytics(points: DataPoint[]): number;
}

const upsertSql = new Map<RollupSpec, string>(
	ROLLUPS.map((spec) => {
		const columns = columnsOf(spec);
		const values = columns.map((column) => (spec.exactIntegers.includes(column) ? "CAST(? AS INTEGER)" : "?"));
		return [
			spec,
			`INSERT INTO ${spec.localTable} (batch, ${columns.join(", ")}) VALUES (0, ${values.join(", ")}) ${onConflictMerge(spec, ["batch", ...spec.keys])}`,
		];
	}),
);

const selectSql = new Map<RollupSpec, string>(
	ROLLUPS.map((spec) => {
		const columns = columnsOf(spec).map((column) => (spec.exactIntegers.includes(column) ? `CAST(${column} AS TEXT) AS ${column}` : column));
		return [spec, `SELECT ${columns.join(", ")} FROM ${spec.localTable} WHERE batch = ?`];
	}),
);

export class TenantAggregator extends DurableObject<Env> {
	private readonly sql: SqlStorage;
	/** Rows written by statements since the counters row last took them. */
	private unsavedRowsWritten = 0;
	/** Serializes flushes: an alarm and a /v1/flush call must not seal or send the same batch twice. */
	private flushing: Promise<unknown> = Promise.resolve();
	readonly sinks: FlushSinks;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.sql = ctx.storage.sql;
		this.sinks = {
			d1: (tenant, batch) => applyFlush(env.DB, tenant, batch, new Date().toISOString()),
			analytics: (points) => writeDataPoints(env.ANALYTICS, points),
		};
		void ctx.blockConcurrencyWhile(async () => migrate(this.sql));
	}

	/**
	 * Takes one tenant's slice of a queue batch. Everything is durable when this resolves: the
	 * consumer acks only then. Ids seen within the dedupe window are dropped, so a redelivered
	 * message or a retried RPC changes nothing.
	 */
	async ingest(tenant: string, events: QueuedEvent[]): Promise<IngestResult> {
		const now = Date.now();
		const result = this.ctx.storage.transactionSync(() => {
			this.claimTenant(tenant);
			const rollups = new Map<RollupSpec, Map<string, RollupRow>>(ROLLUPS.map((spec) => [spec, new Map()]));
			let accepted = 0;
			for (const event of events) {
				const inserted = this.exec("INSERT INTO seen_events (id, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING", event.id, now);
				if (inserted.rowsWritten === 0) continue;
				accepted++;
				addEvent(rollups.get(EVENT_ROLLUP)!, event);
				if (event.usage) addUsage(rollups.get(USAGE_ROLLUP)!, event);
			}
			for (const [spec, rows] of rollups) {
				const sql = upsertSql.get(spec)!;
				const columns = columnsOf(spec);
				for (const row of rows.values()) this.exec(sql, ...columns.map((column) => row[column] ?? null));
			}
			const duplicates = events.length - accepted;
			this.exec("UPDATE counters SET consumed = consumed + ?, duplicates = duplicates + ?, aggregated = aggregated + ?", events.length, duplicates, accepted);
			if (accepted > 0 && this.meta("open_since") === null) this.setMeta("open_since", String(now));
			this.countOperations({ rpc_calls: 1 });
			return { accepted, duplicates };
		});
		await this.armAfterIngest(now);
		return result;
	}

	/**
	 * Keeps events the producer could not enqueue, durably, and re-enqueues them from the alarm.
	 * They go back through the queue (not straight into the rollups) so every event takes one path.
	 */
	async spill(tenant: string, events: QueuedEvent[]): Promise<void> {
		const now = Date.now();
		this.ctx.storage.transactionSync(() => {
			this.claimTenant(tenant);
			this.exec("INSERT INTO spilled_events (events, spilled_at) VALUES (?, ?)", JSON.stringify(events), now);
			this.exec("UPDATE counters SET spilled = spilled + ?", events.length);
			this.countOperations({ rpc_calls: 1 });
		});
		const current = await this.ctx.storage.getAlarm();
		if (current === null || current > now) await this.ctx.storage.setAlarm(now);
	}

	/** This tenant's pipeline counters, for /v1/metrics and /v1/health. */
	async metrics(): Promise<AggregatorMetrics> {
		const counters = this.sql.exec<AggregatorCounters>("SELECT consumed, duplicates, aggregated, flushed_rows, flush_failures, spilled, respooled FROM counters").one();
		const since = this.meta("sealed_since") ?? this.meta("open_since");
		const failing = this.meta("failing_since");
		const spillPending = this.sql.exec<{ n: number }>("SELECT coalesce(sum(json_array_length(events)), 0) AS n FROM spilled_events").one().n;
		return {
			counters: { ...counters },
			oldestUnflushedMs: since === null ? null : Math.max(0, Date.now() - Number(since)),
			flushFailingSince: failing === null ? null : Number(failing),
			spillPending,
		};
	}

	/** The platform operations this aggregator caused, and its storage size, for the benchmark. */
	async operations(): Promise<AggregatorOperations> {
		return {
			...this.sql
				.exec<Omit<AggregatorOperations, "storageBytes">>("SELECT rpc_calls, alarms, sqlite_rows_written, d1_rows_written, analytics_points FROM counters")
				.one(),
			storageBytes: this.sql.databaseSize,
		};
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
			this.drainAnalytics();
			this.countOperations({ rpc_calls: 1 });
			await this.armAfterAlarm(Date.now());
		}
	}

	override async alarm(): Promise<void> {
		const now = Date.now();
		try {
			// An alarm that fires before a D1 retry's backoff ends leaves the sealed batch alone.
			if (now >= this.retryAt()) {
				await this.exclusive(async () => {
					for (let i = 0; i < MAX_FLUSHES_PER_ALARM; i++) if ((await this.flushOnce()) === null) break;
				});
			}
		} catch (err) {
			// The deltas stay sealed; armAfterAlarm retries after the backoff this failure set.
			console.error("flush to D1 failed", err);
		}
		this.prune(now);
		this.drainAnalytics();
		await this.respool(now);
		this.countOperations({ alarms: 1 });
		await this.armAfterAlarm(now);
	}

	/** Re-enqueues spilled events, oldest first; a failure keeps them for a later alarm. */
	private async respool(now: number): Promise<void> {
		if (now < Number(this.meta("respool_retry_at") ?? 0)) return;
		const tenant = this.meta("tenant");
		const chunks = this.sql.exec<{ id: number; events: string }>("SELECT id, events FROM spilled_events ORDER BY id LIMIT ?", RESPOOL_PER_ALARM).toArray();
		for (const chunk of chunks) {
			const events = JSON.parse(chunk.events) as QueuedEvent[];
			try {
				await enqueueEvents(this.env.EVENTS, tenant!, events);
			} catch (err) {
				console.error("re-enqueue of spilled events failed; kept for a later alarm", err);
				this.setMeta("respool_retry_at", String(now + RESPOOL_RETRY_MS));
				return;
			}
			this.ctx.storage.transactionSync(() => {
				this.exec("DELETE FROM spilled_events WHERE id = ?", chunk.id);
				this.exec("UPDATE counters SET respooled = respooled + ?", events.length);
			});
		}
		this.exec("DELETE FROM meta WHERE key = 'respool_retry_at'");
	}

	/** Seals (or resumes) one batch and writes it to D1. Returns rows flushed, or null if idle. */
	private async flushOnce(): Promise<number | null> {
		const batch = this.sealBatch();
		if (batch === null) return null;
		const tenant = this.meta("tenant")!;
		const rows = new Map<RollupSpec, RollupRow[]>(ROLLUPS.map((spec) => [spec, this.sql.exec<RollupRow>(selectSql.get(spec)!, batch).toArray()]));
		const flushId = `${this.meta("incarnation")}:${batch}`;
		const flush: FlushBatch = { flushId, rows, stats: { rowsWritten: 0 } };
		try {
			await this.sinks.d1(tenant, flush);
		} catch (err) {
			const now = Date.now();
			const failures = Number(this.meta("flush_failures") ?? 0) + 1;
			const failingSince = Number(this.meta("failing_since") ?? now);
			this.ctx.storage.transactionSync(() => {
				this.setMeta("flush_failures", String(failures));
				this.setMeta("retry_at", String(now + backoffMs(failures)));
				this.setMeta("failing_since", String(failingSince));
				this.exec("UPDATE counters SET flush_failures = flush_failures + 1");
			});
			await this.tellHealth((health) => health.flushFailing(tenant, failingSince, failures));
			throw err;
		}
		// D1 has the batch: only now may the local copy go. Dashboards get their points from an
		// outbox in the same transaction, so an Analytics Engine failure cannot touch D1's result.
		let count = 0;
		this.ctx.storage.transactionSync(() => {
			for (const [spec, specRows] of rows) {
				this.exec(`DELETE FROM ${spec.localTable} WHERE batch = ?`, batch);
				for (const row of specRows) this.exec("INSERT INTO analytics_outbox (point) VALUES (?)", JSON.stringify(toDataPoint(tenant, spec, row)));
				count += specRows.length;
			}
			this.exec("UPDATE counters SET flushed_rows = flushed_rows + ?", count);
			this.countOperations({ d1_rows_written: flush.stats?.rowsWritten ?? 0 });
			this.exec("DELETE FROM meta WHERE key IN ('sealed_batch', 'sealed_since', 'flush_failures', 'retry_at')");
		});
		if (this.meta("failing_since") !== null) {
			this.exec("DELETE FROM meta WHERE key = 'failing_since'");
			await this.tellHealth((health) => health.flushRecovered(tenant));
		}
		return count;
	}

	/** The batch to send: the one still sealed from a failed or interrupted flush, else a new one. */
	private sealBatch(): number | null {
		return this.ctx.storage.transactionSync(() => {
			const sealed = this.meta("sealed_batch");
			if (sealed !== null) return Number(sealed);
			if (this.openRows() === 0) return null;
			const batch = Number(this.meta("next_batch") ?? 1);
			for (const spec of ROLLUPS) {
				this.exec(
					`UPDATE ${spec.localTable} SET batch = ? WHERE rowid IN (SELECT rowid FROM ${spec.localTable} WHERE batch = 0 LIMIT ?)`,
					batch,
					MAX_ROWS_PER_FLUSH,
				);
			}
			this.setMeta("next_batch", String(batch + 1));
			this.setMeta("sealed_batch", String(batch));
			this.setMeta("sealed_since", this.meta("open_since") ?? String(Date.now()));
			if (this.openRows() === 0) this.exec("DELETE FROM meta WHERE key = 'open_since'");
			return batch;
		});
	}

	/** Writes queued dashboard points, at most the per-invocation limit. Failures only log. */
	private drainAnalytics(): void {
		const queued = this.sql
			.exec<{ id: number; point: string }>("SELECT id, point FROM analytics_outbox ORDER BY id LIMIT ?", MAX_POINTS_PER_INVOCATION)
			.toArray();
		if (queued.length === 0) return;
		try {
			this.sinks.analytics(queued.map((row) => JSON.parse(row.point) as DataPoint));
		} catch (err) {
			console.error("Analytics Engine write failed; points kept for the next alarm", err);
			return;
		}
		this.exec("DELETE FROM analytics_outbox WHERE id <= ?", queued[queued.length - 1]!.id);
		this.countOperations({ analytics_points: queued.length });
	}

	private prune(now: number): void {
		this.exec("DELETE FROM seen_events WHERE seen_at < ?", now - this.dedupeWindowMs);
	}

	/** Arms the flush alarm if none is set, or pulls it forward once enough rows are pending. */
	private async armAfterIngest(now: number): Promise<void> {
		const current = await this.ctx.storage.getAlarm();
		const full = this.openRows() >= this.maxRows;
		// Never later than the flush interval (an alarm set only for pruning may be days away),
		// and never before a D1 retry's backoff ends.
		const due = Math.max(full ? now : now + this.intervalMs, this.retryAt());
		if (current === null || due < current) await this.ctx.storage.setAlarm(due);
	}

	/** Re-arms only if work remains: deltas to flush, points to write, or ids to prune. */
	private async armAfterAlarm(now: number): Promise<void> {
		const due: number[] = [];
		if (this.meta("sealed_batch") !== null) due.push(Math.max(now, this.retryAt()));
		const open = this.openRows();
		if (open > 0) due.push(Math.max(open >= this.maxRows ? now : now + this.intervalMs, this.retryAt()));
		if (this.exec("SELECT 1 FROM analytics_outbox LIMIT 1").toArray().length > 0) due.push(now);
		if (this.exec("SELECT 1 FROM spilled_events LIMIT 1").toArray().length > 0) due.push(Math.max(now, Number(this.meta("respool_retry_at") ?? 0)));
		const oldest = this.sql.exec<{ seen: number | null }>("SELECT min(seen_at) AS seen FROM seen_events").one().seen;
		if (oldest !== null) due.push(oldest + this.dedupeWindowMs + 1);
		if (due.length === 0) await this.ctx.storage.deleteAlarm();
		else await this.ctx.storage.setAlarm(Math.min(...due));
	}

	/** Flush failures and recoveries go to the pipeline's health monitor; it must never block a flush. */
	private async tellHealth(report: (health: DurableObjectStub<HealthMonitor>) => Promise<void>): Promise<void> {
		try {
			await report(this.env.HEALTH.getByName(HEALTH_MONITOR));
		} catch (err) {
			console.error("health monitor unreachable", err);
		}
	}

	private async exclusive<T>(work: () => Promise<T>): Promise<T> {
		const run = this.flushing.then(work, work);
		this.flushing = run.catch(() => undefined);
		return run;
	}

	/** An aggregator belongs to the tenant it is named for; a slice for another is a routing bug. */
	private claimTenant(tenant: string): void {
		const owner = this.meta("tenant") ?? this.ctx.id.name ?? null;
		if (owner !== null && owner !== tenant) throw new Error(`aggregator for ${owner} was sent events for ${tenant}`);
		if (this.meta("tenant") === null) {
			this.setMeta("tenant", tenant);
			// Flush ids are unique per storage incarnation, so a wiped aggregator can never
			// collide with the flush ledger an earlier incarnation left in D1.
			this.setMeta("incarnation", crypto.randomUUID());
		}
	}

	private openRows(): number {
		return this.sql
			.exec<{ rows: number }>(
				"SELECT (SELECT count(*) FROM pending_usage WHERE batch = 0) + (SELECT count(*) FROM pending_events WHERE batch = 0) AS rows",
			)
			.one().rows;
	}

	private retryAt(): number {
		return Number(this.meta("retry_at") ?? 0);
	}

	/** Every statement goes through here, so the rows it writes are counted (see `operations`). */
	private exec<T extends Record<string, SqlStorageValue>>(query: string, ...binds: unknown[]): SqlStorageCursor<T> {
		const cursor = this.sql.exec<T>(query, ...binds);
		this.unsavedRowsWritten += cursor.rowsWritten;
		return cursor;
	}

	/** Adds operation counts to the counters row; the update's own row write is counted too. */
	private countOperations(counts: { rpc_calls?: number; alarms?: number; d1_rows_written?: number; analytics_points?: number }): void {
		const rows = this.unsavedRowsWritten + 1;
		this.unsavedRowsWritten = 0;
		this.sql.exec(
			"UPDATE counters SET rpc_calls = rpc_calls + ?, alarms = alarms + ?, d1_rows_written = d1_rows_written + ?, analytics_points = analytics_points + ?, sqlite_rows_written = sqlite_rows_written + ?",
			counts.rpc_calls ?? 0,
			counts.alarms ?? 0,
			counts.d1_rows_written ?? 0,
			counts.analytics_points ?? 0,
			rows,
		);
	}

	private meta(key: string): string | null {
		return this.sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
	}

	private setMeta(key: string, value: string): void {
		this.exec("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", key, value);
	}

	private get intervalMs(): number {
		return positive(this.env.FLUSH_INTERVAL_MS, 10_000);
	}

	private get maxRows(): number {
		return positive(this.env.FLUSH_MAX_ROWS, 1000);
	}

	private get dedupeWindowMs(): number {
		return positive(this.env.DEDUPE_WINDOW_MS, 7 * 86_400_000);
	}
}

function addEvent(rows: Map<string, RollupRow>, event: QueuedEvent): void {
	const minute = bucketStart(event.timestamp, "minute");
	const key = JSON.stringify([event.event, minute]);
	let row = rows.get(key);
	if (!row) {
		row = { event: event.event, minute, count: 0, errors: 0, duration_count: 0, duration_sum: 0, duration_min: null, duration_max: null };
		rows.set(key, row);
	}
	(row.count as number)++;
	const { duration, statusCode } = event.performance ?? {};
	if (statusCode !== undefined && statusCode >= 500) (row.errors as number)++;
	if (duration !== undefined) {
		(row.duration_count as number)++;
		(row.duration_sum as number) += duration;
		row.duration_min = row.duration_min === null ? duration : Math.min(row.duration_min as number, duration);
		row.duration_max = row.duration_max === null ? duration : Math.max(row.duration_max as number, duration);
	}
}

function addUsage(rows: Map<string, RollupRow>, event: QueuedEvent): void {
	const { sku, unit, micros } = event.usage!;
	const hour = bucketStart(event.timestamp, "hour");
	// JSON keeps any two (sku, unit) pairs apart, whatever characters they hold.
	const key = JSON.stringify([sku, unit, hour]);
	const row = rows.get(key);
	// Summed as BigInt text: a slice of large quantities can pass 2^53 micro-units.
	if (row) {
		row.quantity_micros = (BigInt(row.quantity_micros as string) + BigInt(micros)).toString();
		(row.events as number)++;
	} else rows.set(key, { sku, unit, hour, quantity_micros: String(micros), events: 1 });
}

/** Exponential backoff for D1 flush retries: 2 s, 4 s, 8 s … capped at 5 minutes. */
export function backoffMs(failures: number): number {
	return Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(failures, 20));
}

function positive(value: string | undefined, fallback: number): number {
	const parsed = Number(value);
	return Number.isFinite(parsed) && parsed > 0 ? parsed : fallback;
}
