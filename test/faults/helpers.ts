// Fault-test plumbing: a frozen clock that only moves forward, the Worker called with a queue that
// fails some sends, failures inside the real aggregator, and exact reads of reports, metrics, dead
// letters and the health monitor.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import type { DeadLetterRow as StoredDeadLetter } from "../../src/sinks/d1/dead-letters";
import type { QueuedEvent } from "../../src/event/model";
import type { TenantMetrics } from "../../src/read/metrics";
import { HEALTH_MONITOR, type HealthSnapshot } from "../../src/sinks/health-monitor";
import { d1Rows, FROZEN_AT, InjectedFault } from "../aggregator/fixtures";
import type { StatsItem, UsageItem } from "../e2e/ledger-model";
import { ADMIN_TOKEN, call, getJson, postJson, type TestTenant } from "../helpers/api";
import { freezeClockAt } from "../helpers/clock";
import type { RecordingQueue } from "../helpers/queues";
import { EVENTS_URL, ingest } from "../producer/helpers";

export { InjectedFault };

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
const DAY = 86_400_000;

let frozenDays = 0;
/**
 * Freezes Date (test, Worker and Durable Objects share the isolate) a year ahead of the real clock,
 * so no alarm a test arms fires by itself, and one day later for each call: time never runs
 * backwards within a file, which the producer's counter reports rely on. Note that vi.waitFor
 * moves a faked Date forward by its interval at each poll.
 */
export function freezeClock(): number {
	return freezeClockAt(FROZEN_AT + frozenDays++ * DAY);
}

/** The start of the UTC hour before `now`: event timestamps well inside the accepted window. */
export function previousHour(now: number): number {
	return now - (now % HOUR) - HOUR;
}

export const iso = (ms: number) => new Date(ms).toISOString();

/** A usage of `micros` millionths of a token. */
export const tokens = (micros: number) => ({ sku: "tokens", unit: "token", micros });

// ---- The producer, with a queue that fails ----

/** A POST /v1/events of `events` with `key`, `query` appended to the URL. */
export function eventsRequest(events: unknown[], key: string, query = ""): Request {
	return new Request(EVENTS_URL + query, {
		method: "POST",
		body: JSON.stringify({ events }),
		headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
	});
}

/** POSTs events through the Worker's own fetch handler with EVENTS wrapped; waits for its waitUntil work. */
export async function postThrough(queue: RecordingQueue, request: Request): Promise<Response> {
	return (await ingest(request, queue)).response;
}

// ---- Failures inside the real aggregator ----

/** The aggregator's private steps the fault helpers replace on the live instance. */
interface AggregatorSteps {
	claimTenant(tenant: string): void;
	armAfterIngest(now: number): Promise<void>;
	env: Env;
}

export interface FaultLog {
	calls: number;
	failed: number;
}

/**
 * Makes the tenant's aggregator fail its next `times` writes, through its own steps: "before-commit"
 * throws from the tenant claim that opens every ingest and spill transaction (so the transaction
 * rolls back), "after-commit" throws once ingest's transaction has committed and its alarm is
 * armed (the RPC fails although the events are durable). Later calls run the real step.
 */
export function failAggregatorWrites(tenant: string, times: number, when: "before-commit" | "after-commit"): Promise<FaultLog> {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (instance: TenantAggregator) => {
		const steps = instance as unknown as AggregatorSteps;
		const log: FaultLog = { calls: 0, failed: 0 };
		const fail = () => {
			log.calls++;
			if (log.calls > times) return false;
			log.failed++;
			return true;
		};
		if (when === "before-commit") {
			const real = steps.claimTenant;
			steps.claimTenant = (claimed) => {
				if (fail()) throw new InjectedFault("aggregator failed before commit");
				real.call(instance, claimed);
			};
		} else {
			const real = steps.armAfterIngest;
			steps.armAfterIngest = async (now) => {
				await real.call(instance, now);
				if (fail()) throw new InjectedFault("aggregator failed after commit");
			};
		}
		return log;
	});
}

/** Hands the tenant's aggregator a wrapped EVENTS queue for its re-enqueues; the rest of env is real. */
export function wrapAggregatorQueue(tenant: string, queue: Queue): Promise<void> {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (instance: TenantAggregator) => {
		const steps = instance as unknown as AggregatorSteps;
		steps.env = { ...steps.env, EVENTS: queue };
	});
}

/** Puts back the aggregator's own ingest method after breakAggregatorOf replaced it. */
export function restoreIngest(tenant: string): Promise<void> {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (instance: TenantAggregator) => {
		Reflect.deleteProperty(instance, "ingest");
	});
}

/** The chunks of events the tenant's aggregator holds for re-enqueueing. */
export function spilledChunks(tenant: string): Promise<{ events: QueuedEvent[]; spilledAt: number }[]> {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (_instance, state) =>
		state.storage.sql
			.exec<{ events: string; spilled_at: number }>("SELECT events, spilled_at FROM spilled_events ORDER BY id")
			.toArray()
			.map((row) => ({ events: JSON.parse(row.events) as QueuedEvent[], spilledAt: row.spilled_at })),
	);
}

export function alarmOf(tenant: string): Promise<number | null> {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (_instance, state) => state.storage.getAlarm());
}

// ---- Reading what the pipeline reports ----

export function metricsOf(tenant: TestTenant): Promise<TenantMetrics> {
	return getJson<TenantMetrics>("/v1/metrics", tenant.readKey);
}

/** The metrics of a tenant nothing has happened to, overridden by what a test expects. */
export function metricsWith(tenant: TestTenant, counts: Partial<TenantMetrics> = {}): TenantMetrics {
	return {
		tenant: tenant.id,
		received: 0,
		enqueued: 0,
		enqueueFailures: 0,
		lost: 0,
		rejected: 0,
		spilled: 0,
		respooled: 0,
		consumed: 0,
		duplicatesDropped: 0,
		aggregated: 0,
		flushedRows: 0,
		flushFailures: 0,
		deadLettered: 0,
		replayed: 0,
		oldestUnflushedAgeMs: null,
		spillPending: 0,
		capped: 0,
		expired: 0,
		quarantinedRows: 0,
		analyticsDropped: 0,
		...counts,
	};
}

export async function usageOf(tenant: TestTenant, from: number, to: number, granularity = "hour"): Promise<UsageItem[]> {
	return (await getJson<{ items: UsageItem[] }>(`/v1/usage?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey))
		.items;
}

export async function statsOf(tenant: TestTenant, from: number, to: number, granularity = "minute"): Promise<StatsItem[]> {
	return (await getJson<{ items: StatsItem[] }>(`/v1/stats?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey))
		.items;
}

/** POST /v1/flush with the tenant's write key. */
export function flushVia(tenant: TestTenant): Promise<Response> {
	return call("/v1/flush", { method: "POST", key: tenant.writeKey });
}

/** The events of a stats item with no performance data. */
export function countOnly(event: string, period: number, count: number): StatsItem {
	return { event, period: iso(period), count, errors: 0, duration: { count: 0, sum: 0, min: null, max: null } };
}

/** What the health monitor holds about one tenant. */
export async function healthOf(tenant: string): Promise<HealthSnapshot> {
	const snapshot = await env.HEALTH.getByName(HEALTH_MONITOR).snapshot();
	return {
		failingFlushes: snapshot.failingFlushes.filter((entry) => entry.tenant === tenant),
		spills: snapshot.spills.filter((entry) => entry.tenant === tenant),
	};
}

// ---- Dead letters ----

export interface DeadLetterItem {
	id: string;
	tenant: string | null;
	error: string;
	attempts: number;
	firstFailedAt: string;
	lastFailedAt: string;
	replayedAt: string | null;
	body: unknown;
}

export async function listDeadLetters(query = ""): Promise<{ items: DeadLetterItem[]; nextCursor: string | null }> {
	return getJson(`/v1/admin/dead-letters${query}`, ADMIN_TOKEN);
}

export async function replay(body: unknown): Promise<{ replayed: string[]; skipped: { id: string; reason: string }[] }> {
	const response = await postJson("/v1/admin/dead-letters/replay", body, ADMIN_TOKEN);
	if (response.status !== 200) throw new Error(`replay: ${response.status} ${await response.text()}`);
	return response.json();
}

/** A D1 dead_letters row as the tests read it (without its paging sequence number). */
export type DeadLetterRow = Omit<StoredDeadLetter, "seq">;

/** D1's dead_letters rows whose id starts with `prefix`, by id. */
export function deadLetterRows(prefix: string): Promise<DeadLetterRow[]> {
	return d1Rows(
		"SELECT id, tenant, body, error, attempts, first_failed_at, last_failed_at, replayed_at FROM dead_letters WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
		prefix,
	);
}
