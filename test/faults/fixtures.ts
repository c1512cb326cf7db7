// Fault-test plumbing: a frozen clock that only moves forward, a queue wrapper that fails some sends
// and passes the rest to the real queue, failures inside the real aggregator, and exact reads of
// reports, metrics, dead letters and the health monitor.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { vi } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import type { EventsMessage, QueuedEvent } from "../../src/events/schema";
import type { TenantMetrics } from "../../src/health/metrics";
import { HEALTH_MONITOR, type HealthSnapshot } from "../../src/health/monitor";
import worker from "../../src/index";
import { FROZEN_AT, InjectedFault } from "../aggregator/fixtures";
import { ADMIN_TOKEN, call, postJson, type TestTenant } from "../helpers/api";

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
	vi.useFakeTimers({ toFake: ["Date"], now: FROZEN_AT + frozenDays++ * DAY });
	return Date.now();
}

export function advanceClock(ms: number): number {
	vi.setSystemTime(Date.now() + ms);
	return Date.now();
}

/** The start of the UTC hour before `now`: event timestamps well inside the accepted window. */
export function previousHour(now: number): number {
	return now - (now % HOUR) - HOUR;
}

export const iso = (ms: number) => new Date(ms).toISOString();

// ---- The producer, with a queue that fails ----

/** A promise the test resolves by hand. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
	let resolve!: () => void;
	const promise = new Promise<void>((r) => (resolve = r));
	return { promise, resolve };
}

/**
 * Wraps the real EVENTS queue: call n (from 1) throws if `fails(n)`, else waits for the optional
 * gate and delegates to the real local queue. With `failAfterSend`, a failing call first sends for
 * real and then throws: the queue has the messages but the sender believes it failed (a lost
 * acknowledgement). Records the message bodies of every call.
 */
export class FlakyQueue implements Queue {
	/** Message bodies per send or sendBatch call, failed ones included, in call order. */
	readonly calls: EventsMessage[][] = [];
	failed = 0;
	delivered = 0;

	constructor(
		private readonly fails: (call: number) => boolean,
		private readonly gate: Promise<void> = Promise.resolve(),
		private readonly target: Queue = env.EVENTS,
		private readonly failAfterSend = false,
	) {}

	static failingFirst(times: number): FlakyQueue {
		return new FlakyQueue((n) => n <= times);
	}

	static failingAfter(successes: number): FlakyQueue {
		return new FlakyQueue((n) => n > successes);
	}

	static alwaysFailing(): FlakyQueue {
		return new FlakyQueue(() => true);
	}

	/** Sends every call for real, but reports the first `times` as failed. */
	static losingFirstAcks(times: number): FlakyQueue {
		return new FlakyQueue((n) => n <= times, undefined, env.EVENTS, true);
	}

	metrics(): Promise<QueueMetrics> {
		return this.target.metrics();
	}

	send(body: unknown, options?: QueueSendOptions): Promise<QueueSendResponse> {
		return this.forward([body], () => this.target.send(body, options));
	}

	sendBatch(messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions): Promise<QueueSendBatchResponse> {
		const list = [...messages];
		return this.forward(
			list.map((message) => message.body),
			() => this.target.sendBatch(list, options),
		);
	}

	/** The events call n (from 1) carried, whether it failed or not. */
	eventsOfCall(n: number): QueuedEvent[] {
		return this.calls[n - 1]!.flatMap((body) => body.events);
	}

	private async forward<T>(bodies: unknown[], send: () => Promise<T>): Promise<T> {
		this.calls.push(bodies.map((body) => structuredClone(body) as EventsMessage));
		const fail = this.fails(this.calls.length);
		if (fail && !this.failAfterSend) {
			this.failed++;
			throw new InjectedFault("queue unavailable");
		}
		await this.gate;
		const result = await send();
		this.delivered++;
		if (fail) {
			this.failed++;
			throw new InjectedFault("queue acknowledgement lost");
		}
		return result;
	}
}

export const EVENTS_URL = "https://meterline.test/v1/events";

export function eventsRequest(events: unknown[], key: string, query = ""): Request {
	return new Request(EVENTS_URL + query, {
		method: "POST",
		body: JSON.stringify({ events }),
		headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
	});
}

/** POSTs events through the Worker's own fetch handler with EVENTS wrapped; waits for its waitUntil work. */
export async function postThrough(queue: Queue, request: Request): Promise<Response> {
	const ctx = createExecutionContext();
	const response = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, { ...env, EVENTS: queue }, ctx);
	await waitOnExecutionContext(ctx);
	return response;
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
 * throws from the tenant check that opens every ingest and spill transaction (so the transaction
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

async function getJson<T>(path: string, key: string): Promise<T> {
	const response = await call(path, { key });
	if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
	return response.json<T>();
}

export function metricsOf(tenant: TestTenant): Promise<TenantMetrics> {
	return getJson<TenantMetrics>("/v1/metrics", tenant.readKey);
}

/** The metrics of a tenant nothing has happened to, overridden by what a test expects. */
export function metricsWith(tenant: TestTenant, counts: Partial<TenantMetrics>): TenantMetrics {
	return {
		tenant: tenant.id,
		received: 0,
		enqueued: 0,
		enqueueFailures: 0,
		lost: 0,
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
		...counts,
	};
}

export interface UsageItem {
	sku: string;
	unit: string;
	period: string;
	quantity: number;
	events: number;
}

export interface StatsItem {
	event: string;
	period: string;
	count: number;
	errors: number;
	duration: { count: number; sum: number; min: number | null; max: number | null };
}

export async function usageOf(tenant: TestTenant, from: number, to: number, granularity = "hour"): Promise<UsageItem[]> {
	return (await getJson<{ items: UsageItem[] }>(`/v1/usage?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey)).items;
}

export async function statsOf(tenant: TestTenant, from: number, to: number, granularity = "minute"): Promise<StatsItem[]> {
	return (await getJson<{ items: StatsItem[] }>(`/v1/stats?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey)).items;
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

export interface DeadLetterRow {
	id: string;
	tenant: string | null;
	body: string;
	error: string;
	attempts: number;
	first_failed_at: string;
	last_failed_at: string;
	replayed_at: string | null;
}

/** D1's dead_letters rows whose id starts with `prefix`, by id. */
export async function deadLetterRows(prefix: string): Promise<DeadLetterRow[]> {
	const { results } = await env.DB.prepare(
		"SELECT id, tenant, body, error, attempts, first_failed_at, last_failed_at, replayed_at FROM dead_letters WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
	)
		.bind(prefix)
		.all<DeadLetterRow>();
	return results;
}
