// One pipeline-wide Durable Object that hears of trouble (failing D1 flushes, spilled enqueues),
// so /v1/health can answer without asking every tenant's aggregator. It hears only of changes,
// which are rare, so one object is enough.
import { DurableObject } from "cloudflare:workers";

export const HEALTH_MONITOR = "pipeline";
/** Spills older than this are forgotten. */
const SPILL_MEMORY_MS = 86_400_000;

export interface HealthSnapshot {
	/** Tenants whose D1 flushes are failing, with when that began and how many attempts failed. */
	failingFlushes: { tenant: string; since: number; failures: number }[];
	/** Spilled enqueues per time, newest first, within the last day. */
	spills: { tenant: string; at: number; events: number }[];
}

export class HealthMonitor extends DurableObject<Env> {
	private readonly sql: SqlStorage;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.sql = ctx.storage.sql;
		void ctx.blockConcurrencyWhile(async () => {
			this.sql
				.exec(`CREATE TABLE IF NOT EXISTS failing_flushes (tenant TEXT PRIMARY KEY, since INTEGER NOT NULL, failures INTEGER NOT NULL);
				CREATE TABLE IF NOT EXISTS spills (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, at INTEGER NOT NULL, events INTEGER NOT NULL);`);
		});
	}

	async flushFailing(tenant: string, since: number, failures: number): Promise<void> {
		this.sql.exec(
			"INSERT INTO failing_flushes (tenant, since, failures) VALUES (?, ?, ?) ON CONFLICT (tenant) DO UPDATE SET failures = excluded.failures",
			tenant,
			since,
			failures,
		);
	}

	async flushRecovered(tenant: string): Promise<void> {
		this.sql.exec("DELETE FROM failing_flushes WHERE tenant = ?", tenant);
	}

	async spilled(tenant: string, events: number): Promise<void> {
		const now = Date.now();
		this.sql.exec("INSERT INTO spills (tenant, at, events) VALUES (?, ?, ?)", tenant, now, events);
		this.sql.exec("DELETE FROM spills WHERE at < ?", now - SPILL_MEMORY_MS);
	}

	async snapshot(): Promise<HealthSnapshot> {
		return {
			failingFlushes: this.sql
				.exec<{ tenant: string; since: number; failures: number }>(
					"SELECT tenant, since, failures FROM failing_flushes ORDER BY since",
				)
				.toArray(),
			spills: this.sql
				.exec<{ tenant: string; at: number; events: number }>(
					"SELECT tenant, at, events FROM spills WHERE at >= ? ORDER BY at DESC LIMIT 100",
					Date.now() - SPILL_MEMORY_MS,
				)
				.toArray(),
		};
	}
}
