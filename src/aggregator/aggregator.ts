// One SQLite-backed Durable Object per tenant: dedupes event ids, rolls events up, and flushes the
// rollups to D1 (exactly once, via the flush ledger) and then to Analytics Engine. This class is
// only the RPC surface and the alarm; each concern lives in its own module beside it.
import { DurableObject } from "cloudflare:workers";
import type { EventsJson, QueuedEvent } from "../event/model.js";
import type { MeterDefinition, StoredMeter } from "../meters/model.js";
import type { ArchivedEvent } from "../sinks/archive.js";
import { backfillPart, type BackfillResult } from "./backfill.js";
import type { KeyFilter } from "../sinks/d1/rollups.js";
import type { RollupSpec } from "../sinks/rollups.js";
import { parseEventsJson } from "../event/guard.js";
import { armFlush, rearm } from "./alarm.js";
import { forgetForwarding } from "./archive.js";
import { IdMemory } from "./dedupe.js";
import { flushUpTo } from "./flush.js";
import { housekeep } from "./housekeeping.js";
import { ingestSlice, type IngestResult } from "./ingest.js";
import { migrate } from "./local-schema.js";
import { checkOwner, claimTenant } from "./ownership.js";
import { MeterRegistry } from "./meter-definitions.js";
import { MeterGroups } from "./meter-groups.js";
import { admitForProducer, NameRegistry, type NameKind } from "./names.js";
import { drainOutbox } from "./outbox.js";
import { meterCap, meterGroupCap, nameCaps, platformSinks, type FlushSinks, type Parts } from "./parts.js";
import { metricsOf, pendingSnapshot, type AggregatorMetrics, type AggregatorOperations, type PendingSnapshot } from "./snapshot.js";
import { storeSpill } from "./spill.js";
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
	 * retried RPC changes nothing; events that cannot be counted come back as `refused`. The queue
	 * consumer sends the events as JSON text, one array per queue message, unread: strings cross
	 * the RPC boundary far cheaper than thousands of objects, they are parsed and checked once, here,
	 * and the archive keeps them as they are. A message that fails the guard comes back as `poison`,
	 * none of its events counted.
	 */
	async ingest(tenant: string, events: QueuedEvent[] | EventsJson): Promise<IngestResult> {
		const now = Date.now();
		if (Array.isArray(events)) {
			const result = ingestSlice(this.parts, tenant, events, now, (claimed) => this.claimTenant(claimed));
			await this.armAfterIngest(now);
			return result;
		}
		const list: QueuedEvent[] = [];
		const json: string[] = [];
		const poison: NonNullable<IngestResult["poison"]> = [];
		for (const [index, text] of events.json.entries()) {
			const parsed = parseEventsJson(tenant, text);
			if ("problem" in parsed) {
				poison.push({ index, problem: parsed.problem });
				continue;
			}
			for (const event of parsed.events) list.push(event);
			json.push(text);
		}
		const result = ingestSlice(this.parts, tenant, list, now, (claimed) => this.claimTenant(claimed), json);
		await this.armAfterIngest(now);
		return poison.length > 0 ? { ...result, poison } : result;
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
		this.owned(tenant, "claim", () => storeSpill(this.store, events, now));
		const current = await this.ctx.storage.getAlarm();
		if (current === null || current > now) await this.ctx.storage.setAlarm(now);
	}

	/** A destination of the tenant was created or deleted: the next archived range asks D1 again whether to forward. */
	async destinationsChanged(tenant: string): Promise<void> {
		forgetForwarding(tenant);
	}

	/** Closes a month (later usage for it becomes adjustments), then flushes so D1 has the month complete. */
	async closePeriod(tenant: string, period: string): Promise<number> {
		this.owned(tenant, "claim", () => this.store.exec("INSERT INTO closed_periods (period) VALUES (?) ON CONFLICT DO NOTHING", period));
		this.closed.add(period);
		return this.flush();
	}

	/** Replays one archive part through a meter created since (POST /v1/admin/backfill); a part counts once per meter. */
	async backfillMeter(tenant: string, meterId: number, part: string, events: ArchivedEvent[]): Promise<BackfillResult> {
		const now = Date.now();
		const result = this.owned(tenant, "check", () => backfillPart(this.parts, meterId, part, events, now));
		await this.armAfterIngest(now);
		return result;
	}

	/** Creates a meter that counts events ingested from now on; "exists" when an active meter has its slug, "capped" past MAX_METERS. */
	async createMeter(tenant: string, definition: MeterDefinition): Promise<StoredMeter | "exists" | "capped"> {
		return this.owned(tenant, "claim", () => this.meters.create(definition, Date.now()));
	}

	/** The active meters, by slug. */
	async listMeters(tenant: string): Promise<StoredMeter[]> {
		return this.owned(tenant, "check", () => this.meters.list());
	}

	/** Marks the active meter with this slug deleted (its history stays); null if there is none. */
	async deleteMeter(tenant: string, slug: string): Promise<StoredMeter | null> {
		return this.owned(tenant, "claim", () => this.meters.delete(slug, Date.now()));
	}

	/** The active meter with this slug, else the one deleted last, else null. */
	async getMeter(tenant: string, slug: string): Promise<StoredMeter | null> {
		return this.owned(tenant, "check", () => this.meters.get(slug));
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
			return await this.exclusive(async () => flushUpTo(this.parts, Infinity));
		} finally {
			drainOutbox(this.store, (points) => this.sinks.analytics(points), Date.now());
			this.store.transact(() => undefined, { rpc_calls: 1 });
			await rearm(this.ctx.storage, this.parts, Date.now());
		}
	}

	override async alarm(): Promise<void> {
		const now = Date.now();
		const parts = this.parts;
		try {
			// An alarm that fires before a D1 retry's backoff ends leaves the sealed batch alone.
			if (now >= this.store.state.retries.flush.retryAt) {
				await this.exclusive(async () => flushUpTo(parts, MAX_FLUSHES_PER_ALARM));
			}
		} catch (err) {
			// The deltas stay sealed; rearm retries after the backoff this failure set.
			console.error("flush to D1 failed", err);
		}
		// After the D1 flush, each with its own backoff: R2 or the queue being down never holds up billing.
		await housekeep(parts, now);
		this.store.transact(() => undefined, { alarms: 1 });
		await rearm(this.ctx.storage, this.parts, now);
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

	/** The last step of every ingest; a named method so the fault tests can fail an RPC after its commit. */
	private async armAfterIngest(now: number): Promise<void> {
		await armFlush(this.ctx.storage, this.parts, now);
	}

	private async exclusive<T>(work: () => Promise<T>): Promise<T> {
		const run = this.flushing.then(work, work);
		this.flushing = run.catch(() => undefined);
		return run;
	}

	/** One RPC's storage work in one transaction, for this object's tenant; "claim" when it writes. */
	private owned<T>(tenant: string, mode: "claim" | "check", work: () => T): T {
		return this.store.transact(
			() => {
				if (mode === "claim") this.claimTenant(tenant);
				else this.checkOwner(tenant);
				return work();
			},
			{ rpc_calls: 1 },
		);
	}

	private checkOwner(tenant: string): void {
		checkOwner(this.store, this.ctx.id.name, tenant);
	}

	private claimTenant(tenant: string): void {
		claimTenant(this.store, this.ctx.id.name, tenant);
	}
}
