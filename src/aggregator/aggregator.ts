// One SQLite-backed Durable Object per tenant: dedupes event ids, rolls events up, and flushes the
// rollups to D1 (exactly once, via the flush ledger) and then to Analytics Engine. This class is
// only the RPC surface and the alarm; each concern lives in its own module beside it.
import { DurableObject } from "cloudflare:workers";
import { DEDUPE_WINDOW_MS, type QueuedEvent } from "../event/model.js";
import type { MeterDefinition, StoredMeter } from "../meters/model.js";
import type { ArchivedEvent } from "../sinks/archive.js";
import { archiveOnce } from "./archive.js";
import { backfillPart, type BackfillResult } from "./backfill.js";
import type { KeyFilter } from "../sinks/d1/rollups.js";
import type { RollupSpec } from "../sinks/rollups.js";
import { alarmInputs, nextAlarm } from "./alarm.js";
import { openRows } from "./batches.js";
import { compact } from "./compaction.js";
import { IdMemory } from "./dedupe.js";
import { flushOnce } from "./flush.js";
import { reportHealth } from "./health-report.js";
import { ingestSlice, type IngestResult } from "./ingest.js";
import { migrate } from "./local-schema.js";
import { MeterRegistry } from "./meter-definitions.js";
import { MeterGroups } from "./meter-groups.js";
import { admitForProducer, NameRegistry, type NameKind } from "./names.js";
import { drainOutbox } from "./outbox.js";
import { flushSettings, meterCap, meterGroupCap, nameCaps, platformSinks, type FlushSinks, type Parts } from "./parts.js";
import { storeQuarantine } from "./quarantine.js";
import { metricsOf, pendingSnapshot, type AggregatorMetrics, type AggregatorOperations, type PendingSnapshot } from "./snapshot.js";
import { respool, storeSpill } from "./spill.js";
import { Store } from "./state.js";

/** Flushes one alarm runs before it yields and re-arms. */
const MAX_FLUSHES_PER_ALARM = 10;

export class TenantAggregator extends DurableObject<Env> {
	private store!: Store;
	private ids!: IdMemory;
	private names!: NameRegistry;
	private meters!: MeterRegistry;
	private meterGroups!: MeterGroups;
	private closed!: Set<string>;
	/** Serializes flushes: an alarm and a /v1/flush call must not seal or send the same batch twice. */
	private flushing: Promise<unknown> = Promise.resolve();
	readonly sinks: FlushSinks;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.sinks = platformSinks(env);
		void ctx.blockConcurrencyWhile(async () => this.load());
	}

	/** Opens this object's storage: its schema, state and the modules over them. */
	private load(): void {
		migrate(this.ctx.storage);
		this.store = new Store(this.ctx.storage);
		this.ids = new IdMemory(this.store);
		this.names = new NameRegistry(this.store, nameCaps(this.env));
		this.meters = new MeterRegistry(this.store, meterCap(this.env));
		this.meterGroups = new MeterGroups(this.store, meterGroupCap(this.env));
		this.closed = new Set(this.store.rows<{ period: string }>("SELECT period FROM closed_periods").map((row) => row.period));
	}

	/** Forgets everything, storage and alarm included (DELETE /v1/test-data); only ever a test space. */
	async wipe(tenant: string): Promise<void> {
		if (!tenant.endsWith("~test")) throw new Error(`only a test space is wiped, not ${tenant}`);
		this.checkOwner(tenant);
		await this.exclusive(async () => {
			await this.ctx.storage.deleteAlarm();
			await this.ctx.storage.deleteAll();
			this.load();
		});
	}

	/**
	 * Takes one tenant's slice of a queue batch. Everything is durable when this resolves: the
	 * consumer acks only then. Ids already remembered are dropped, so a redelivered message or a
	 * retried RPC changes nothing; events that cannot be counted come back as `refused`.
	 */
	async ingest(tenant: string, events: QueuedEvent[]): Promise<IngestResult> {
		const now = Date.now();
		const result = ingestSlice(this.parts, tenant, events, now, (claimed) => this.claimTenant(claimed));
		await this.armAfterIngest(now);
		return result;
	}

	/** Registers names for the producer before it answers (past a cap: a 4xx); `allOrNothing` registers all or none. */
	async admitNames(
		tenant: string,
		names: Partial<Record<NameKind, string[]>>,
		allOrNothing = false,
	): Promise<Record<NameKind, string[]>> {
		return admitForProducer(this.store, this.names, names, allOrNothing, () => this.checkOwner(tenant));
	}

	/** Keeps events the producer could not enqueue; the alarm re-enqueues them, so every event takes one path. */
	async spill(tenant: string, events: QueuedEvent[]): Promise<void> {
		const now = Date.now();
		this.store.transact(
			() => {
				this.claimTenant(tenant);
				storeSpill(this.store, events, now);
			},
			{ rpc_calls: 1 },
		);
		const current = await this.ctx.storage.getAlarm();
		if (current === null || current > now) await this.ctx.storage.setAlarm(now);
	}

	/** Closes a month (later usage for it becomes adjustments), then flushes so D1 has the month complete. */
	async closePeriod(tenant: string, period: string): Promise<number> {
		this.store.transact(
			() => {
				this.claimTenant(tenant);
				this.store.exec("INSERT INTO closed_periods (period) VALUES (?) ON CONFLICT DO NOTHING", period);
			},
			{ rpc_calls: 1 },
		);
		this.closed.add(period);
		return this.flush();
	}

	/** Replays one archive part through a meter created since (POST /v1/admin/backfill); a part counts once per meter. */
	async backfillMeter(tenant: string, meterId: number, part: string, events: ArchivedEvent[]): Promise<BackfillResult> {
		const now = Date.now();
		const result = this.store.transact(
			() => {
				this.checkOwner(tenant);
				return backfillPart(this.parts, meterId, part, events, now);
			},
			{ rpc_calls: 1 },
		);
		await this.armAfterIngest(now);
		return result;
	}

	/**
	 * Creates a meter; it counts the events ingested from now on. "exists" when an active meter has
	 * its slug, "capped" at the tenant's MAX_METERS.
	 */
	async createMeter(tenant: string, definition: MeterDefinition): Promise<StoredMeter | "exists" | "capped"> {
		return this.store.transact(
			() => {
				this.claimTenant(tenant);
				return this.meters.create(definition, Date.now());
			},
			{ rpc_calls: 1 },
		);
	}

	/** The active meters, by slug. */
	async listMeters(tenant: string): Promise<StoredMeter[]> {
		return this.store.transact(
			() => {
				this.checkOwner(tenant);
				return this.meters.list();
			},
			{ rpc_calls: 1 },
		);
	}

	/** Marks the active meter with this slug deleted (its history stays); null if there is none. */
	async deleteMeter(tenant: string, slug: string): Promise<StoredMeter | null> {
		return this.store.transact(
			() => {
				this.claimTenant(tenant);
				return this.meters.delete(slug, Date.now());
			},
			{ rpc_calls: 1 },
		);
	}

	/** The active meter with this slug, else the one deleted last, else null. */
	async getMeter(tenant: string, slug: string): Promise<StoredMeter | null> {
		return this.store.transact(
			() => {
				this.checkOwner(tenant);
				return this.meters.get(slug);
			},
			{ rpc_calls: 1 },
		);
	}

	/** The unflushed rows whose time lies in [from, to), with what a read needs to merge them exactly once. */
	async pending(specs: RollupSpec["name"][], from: string, to: string, where: KeyFilter = {}): Promise<PendingSnapshot> {
		return pendingSnapshot(this.store, specs, from, to, where);
	}

	/** This tenant's pipeline counters, for /v1/metrics and /v1/health. */
	async metrics(): Promise<AggregatorMetrics> {
		return metricsOf(this.store, Date.now());
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
					const count = await flushOnce(this.parts, Date.now());
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
		const parts = this.parts;
		try {
			// An alarm that fires before a D1 retry's backoff ends leaves the sealed batch alone.
			if (now >= this.store.state.retries.flush.retryAt) {
				await this.exclusive(async () => {
					for (let i = 0; i < MAX_FLUSHES_PER_ALARM; i++) if ((await flushOnce(parts, Date.now())) === null) break;
				});
			}
		} catch (err) {
			// The deltas stay sealed; armAfterAlarm retries after the backoff this failure set.
			console.error("flush to D1 failed", err);
		}
		this.ids.pruneWindow(now);
		this.meterGroups.prune(now - DEDUPE_WINDOW_MS);
		await compact(parts, now);
		await storeQuarantine(parts, now);
		// After the D1 flush, with its own backoff: R2 being down never holds up billing.
		await archiveOnce(parts, now);
		drainOutbox(this.store, (points) => this.sinks.analytics(points), now);
		if (this.store.state.tenant !== null) await respool(this.store, this.env.EVENTS, now);
		if (now >= this.store.state.retries.health.retryAt) await reportHealth(parts, now);
		this.store.transact(() => undefined, { alarms: 1 });
		await this.armAfterAlarm(now);
	}

	/** The modules' view of this object, read afresh so a test's replacement of env or sinks counts. */
	private get parts(): Parts {
		return {
			store: this.store,
			ids: this.ids,
			names: this.names,
			meters: this.meters,
			meterGroups: this.meterGroups,
			closed: this.closed,
			env: this.env,
			sinks: this.sinks,
		};
	}

	/** Arms the flush alarm if none is set, or pulls it forward once enough rows are pending. */
	private async armAfterIngest(now: number): Promise<void> {
		const current = await this.ctx.storage.getAlarm();
		const { intervalMs, maxRows } = flushSettings(this.env);
		// Never later than the flush interval (an alarm set only for pruning may be days away),
		// and never before a D1 retry's backoff ends.
		const due = Math.max(openRows(this.store) >= maxRows ? now : now + intervalMs, this.store.state.retries.flush.retryAt);
		if (current === null || due < current) await this.ctx.storage.setAlarm(due);
	}

	/** Re-arms only if work remains. */
	private async armAfterAlarm(now: number): Promise<void> {
		const due = nextAlarm(alarmInputs(this.parts, now));
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
}
