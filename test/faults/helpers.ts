// Fault-test plumbing: a frozen clock that only moves forward, the Worker called with a queue that
// fails some sends, the three events the spill tests send, failures (chosen or random) inside the
// real aggregator, and the health monitor.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, vi } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import type { QueuedEvent } from "../../src/event/model";
import type { TenantMetrics } from "../../src/read/metrics";
import type { DataPoint } from "../../src/sinks/analytics";
import type { FlushBatch } from "../../src/sinks/d1/rollups";
import { HEALTH_MONITOR, type HealthSnapshot } from "../../src/sinks/health-monitor";
import { FROZEN_AT, internals } from "../aggregator/helpers";
import { mulberry32 } from "../e2e/helpers";
import { EVENTS_URL, freezeClockAt, ingest, InjectedFault, type RecordingQueue, type TestTenant } from "../helpers";
import { countOnly, HOUR, iso, metricsOf, metricsWith, statsOf, usageOf } from "../read/helpers";

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

// ---- Three events, and the reports and metrics once the queue has them ----

/** Three events as POSTed, and as the producer queues them. */
export function threeEvents(minute: number, prefix = "p") {
	const wire = [
		{ id: `${prefix}1`, event: "api_call", timestamp: minute, usage: { sku: "tokens", quantity: 1.5 } },
		{
			id: `${prefix}2`,
			event: "api_call",
			timestamp: iso(minute),
			usage: { sku: "tokens", quantity: 0.25 },
			performance: { duration: 12, statusCode: 200 },
		},
		{ id: `${prefix}3`, event: "signup", timestamp: minute },
	];
	const queued: QueuedEvent[] = [
		{ id: `${prefix}1`, event: "api_call", timestamp: minute, usage: { sku: "tokens", unit: "unit", micros: 1_500_000 } },
		{
			id: `${prefix}2`,
			event: "api_call",
			timestamp: minute,
			performance: { duration: 12, statusCode: 200 },
			usage: { sku: "tokens", unit: "unit", micros: 250_000 },
		},
		{ id: `${prefix}3`, event: "signup", timestamp: minute },
	];
	return { wire, queued };
}

/**
 * The rows one flush of the three events writes: 1 usage and 2 event rows, and 27 series rows, 9
 * per grain (minute, hour, day): api_call's total, route "", status 200 and "", country "" (5), and
 * signup's 4.
 */
export const THREE_EVENTS_ROWS = 3 + 27;

/** The reports once the three events, sent in the hour before `start`, are in D1: one usage row, two event rows. */
export async function expectThreeEventsReported(tenant: TestTenant, minute: number, start: number): Promise<void> {
	const hour = previousHour(start);
	expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
		{ sku: "tokens", unit: "unit", period: iso(hour), quantity: 1.75, quantityDecimal: "1.75", events: 2 },
	]);
	expect(await statsOf(tenant, hour, hour + HOUR)).toEqual([
		{ event: "api_call", period: iso(minute), count: 2, errors: 0, duration: { count: 1, sum: 12, min: 12, max: 12 } },
		countOnly("signup", minute, 1),
	]);
}

/**
 * Polls the tenant's metrics until they equal `expected`, with events still unflushed unless it says
 * otherwise (the real queue delivers in the background).
 */
export async function unflushedMetricsBecome(tenant: TestTenant, expected: Partial<TenantMetrics>): Promise<void> {
	await vi.waitFor(
		async () => expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { oldestUnflushedAgeMs: expect.any(Number), ...expected })),
		{
			timeout: 10_000,
			interval: 50,
		},
	);
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

/** What the health monitor holds about one tenant. */
export async function healthOf(tenant: string): Promise<HealthSnapshot> {
	const snapshot = await env.HEALTH.getByName(HEALTH_MONITOR).snapshot();
	return {
		failingFlushes: snapshot.failingFlushes.filter((entry) => entry.tenant === tenant),
		spills: snapshot.spills.filter((entry) => entry.tenant === tenant),
	};
}

// ---- Random faults inside the real aggregator, for the randomized ledger ----

/** The chance of each fault injectFaults draws, per call of the step it fails. */
export interface FaultChances {
	P_FAIL_BEFORE_COMMIT: number;
	P_FAIL_AFTER_COMMIT: number;
	P_D1_FAIL: number;
	P_D1_CRASH_AFTER_COMMIT: number;
	P_ANALYTICS_FAIL: number;
}

export type RpcOutcome = "ok" | "failed-before-commit" | "failed-after-commit";
type FlushOutcome = "ok" | "failed" | "crashed-after-commit";

/** Rows one flush carries, over every rollup. */
function rowsOf(batch: FlushBatch): number {
	return [...batch.rows.values()].reduce((n, rows) => n + rows.length, 0);
}

/** What the faults did inside one tenant's aggregator, in call order. */
export interface FaultRecord {
	enabled: boolean;
	rpc: RpcOutcome[];
	d1: { outcome: FlushOutcome; applied: boolean | null; flushId: string; rows: number }[];
	analyticsFailures: number;
	/** Points the real Analytics Engine binding was given. */
	written: DataPoint[];
}

/**
 * Injects random faults into the tenant's live aggregator through its own seams, each drawn from
 * the tenant's own seeded stream (so the concurrency between tenants cannot change a decision):
 * the tenant check that opens the ingest transaction (fails before commit), the alarm arming
 * after commit (fails after commit), sinks.d1 (fails, or crashes after D1 committed) and
 * sinks.analytics (fails), each with its chance in `chances`.
 */
export function injectFaults(tenant: string, seed: number, chances: FaultChances): Promise<FaultRecord> {
	const { P_FAIL_BEFORE_COMMIT, P_FAIL_AFTER_COMMIT, P_D1_FAIL, P_D1_CRASH_AFTER_COMMIT, P_ANALYTICS_FAIL } = chances;
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (instance: TenantAggregator) => {
		const random = mulberry32(seed);
		const record: FaultRecord = { enabled: true, rpc: [], d1: [], analyticsFailures: 0, written: [] };
		const steps = instance as unknown as { claimTenant(tenant: string): void; armAfterIngest(now: number): Promise<void> };
		const claimTenant = steps.claimTenant;
		const armAfterIngest = steps.armAfterIngest;
		let failAfterCommit = false;
		steps.claimTenant = (claimed) => {
			const roll = record.enabled ? random() : 1;
			if (roll < P_FAIL_BEFORE_COMMIT) {
				record.rpc.push("failed-before-commit");
				throw new InjectedFault("aggregator failed before commit");
			}
			failAfterCommit = roll < P_FAIL_BEFORE_COMMIT + P_FAIL_AFTER_COMMIT;
			claimTenant.call(instance, claimed);
		};
		steps.armAfterIngest = async (now) => {
			await armAfterIngest.call(instance, now);
			const fail = failAfterCommit;
			failAfterCommit = false;
			record.rpc.push(fail ? "failed-after-commit" : "ok");
			if (fail) throw new InjectedFault("aggregator failed after commit");
		};

		const sinks = internals(instance).sinks;
		const d1 = sinks.d1;
		const analytics = sinks.analytics;
		sinks.d1 = async (owner, batch) => {
			const roll = record.enabled ? random() : 1;
			if (roll < P_D1_FAIL) {
				record.d1.push({ outcome: "failed", applied: null, flushId: batch.flushId, rows: rowsOf(batch) });
				throw new InjectedFault("D1 unavailable");
			}
			const applied = await d1(owner, batch);
			const crash = roll < P_D1_FAIL + P_D1_CRASH_AFTER_COMMIT;
			record.d1.push({ outcome: crash ? "crashed-after-commit" : "ok", applied, flushId: batch.flushId, rows: rowsOf(batch) });
			if (crash) throw new InjectedFault("crashed after D1 commit");
			return applied;
		};
		sinks.analytics = (points) => {
			if (record.enabled && random() < P_ANALYTICS_FAIL) {
				record.analyticsFailures++;
				throw new InjectedFault("Analytics Engine unavailable");
			}
			const count = analytics(points);
			record.written.push(...points.slice(0, count));
			return count;
		};
		return record;
	});
}
