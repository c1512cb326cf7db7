// A seeded randomized run: 20,000 events for four tenants, resent and repeated, driven through the
// Worker's real queue handler in random batches while the aggregators' RPCs, D1 flushes and
// Analytics Engine writes fail at random. Retried messages are redelivered here (as the broker
// would), acked ones sometimes again. Every report must equal the ledger computed independently.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { parseEventsBody } from "../../src/event/validate";
import { type EventsMessage } from "../../src/event/model";
import { packMessages, QUEUE_LIMITS } from "../../src/event/pack";
import { d1Flushes, flushMeta, outbox, pendingRowCount, settle } from "../aggregator/helpers";
import { deliver, rawMessage } from "../consumer/helpers";
import {
	expectedStats,
	expectedUsage,
	generateEvents,
	mulberry32,
	sendPlan,
	type Random,
	type StatsItem,
	type TrueEvent,
	type UsageItem,
} from "../e2e/helpers";
import { advanceClock, call, createTenant, getJson, useFrozenClock, type TestTenant } from "../helpers";
import { flushVia, HOUR, iso, metricsOf, metricsWith } from "../read/helpers";
import { freezeClock, injectFaults, type FaultRecord, type RpcOutcome } from "./helpers";

/**
 * The run's seed: every assertion message names it. Tests run inside workerd, where no environment
 * variable reaches them, so to replay or explore another run change this constant.
 */
const SEED = 0x6d6c7466;
const TENANTS = 4;
const EVENTS_PER_TENANT = 5000;
/** Timestamps cover the 50 hours before the current hour: at least three UTC days. */
const SPAN = 50 * HOUR;
const DAY = 24 * HOUR;
/** Small messages (about 40 events each), so batches mix many messages and tenants. */
const MESSAGE_BYTES = 6_000;

const P_FAIL_BEFORE_COMMIT = 0.12;
const P_FAIL_AFTER_COMMIT = 0.06;
const P_D1_FAIL = 0.15;
const P_D1_CRASH_AFTER_COMMIT = 0.1;
const P_ANALYTICS_FAIL = 0.3;
const FAULT_CHANCES = { P_FAIL_BEFORE_COMMIT, P_FAIL_AFTER_COMMIT, P_D1_FAIL, P_D1_CRASH_AFTER_COMMIT, P_ANALYTICS_FAIL };
const P_REDELIVER_ACKED = 0.05;
const P_FLUSH_ACTION = 0.5;

const clock = useFrozenClock(freezeClock);

const int = (random: Random, below: number) => Math.floor(random() * below);

/** The consumer's retry delay for a delivery count, with Math.random at 0.5: round(0.75 × 2 s × 2^(attempts − 1)), capped at 5 min. */
function expectedDelay(attempts: number): number {
	const step = Math.min(300, 2 * 2 ** (attempts - 1));
	return Math.max(1, Math.round(step * 0.75));
}

interface Pending {
	id: string;
	tenant: string;
	body: EventsMessage;
	/** The body as the producer sends it: its JSON text. */
	text: string;
	attempts: number;
}

interface TenantRun {
	tenant: TestTenant;
	truths: TrueEvent[];
	faults: FaultRecord;
	/** Events of ingest calls that committed: what the aggregator's consumed counter must say. */
	consumed: number;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

describe("randomized ledger under faults", () => {
	it("reports exactly the ledger, once per event id, whatever fails and is retried", { timeout: 120_000 }, async () => {
		const random = mulberry32(SEED);
		const first = clock.start - (clock.start % HOUR) - SPAN;
		const tenants = await Promise.all(Array.from({ length: TENANTS }, () => createTenant()));
		// The consumer's retry jitter, fixed at its midpoint so every delay is exact.
		vi.spyOn(Math, "random").mockReturnValue(0.5);

		// Each tenant's events, the requests that send them (with repeats within and across requests),
		// and the queue messages the producer packs from each request after validating it.
		const runs: TenantRun[] = [];
		const requests: Pending[][] = [];
		for (const [index, tenant] of tenants.entries()) {
			const events = generateEvents(random, EVENTS_PER_TENANT, first, SPAN);
			const plan = sendPlan(random, events);
			expect(plan.duplicates, `seed ${SEED}: repeats for ${tenant.id}`).toBeGreaterThan(400);
			const faults = await injectFaults(tenant.id, (SEED ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0, FAULT_CHANCES);
			runs.push({ tenant, truths: events.map((event) => event.truth), faults, consumed: 0 });
			plan.batches.forEach((batch, r) => {
				const { events: queued, issues } = parseEventsBody({ events: batch }, Date.now());
				expect(issues, `seed ${SEED}: the generated events are valid`).toEqual([]);
				const messages = packMessages(tenant.id, queued, { ...QUEUE_LIMITS, messageBytes: MESSAGE_BYTES });
				(requests[r] ??= []).push(
					...messages.map((message, m) => ({
						id: `${tenant.id}/r${r}/m${m}`,
						tenant: tenant.id,
						body: message.body,
						text: message.text,
						attempts: 1,
					})),
				);
			});
		}
		const runOf = new Map(runs.map((run) => [run.tenant.id, run]));
		// The queue's contents, the tenants' requests interleaved.
		const queue: Pending[] = requests.flat();
		const sent = queue.reduce((total, message) => total + message.body.events.length, 0);
		expect(sent, `seed ${SEED}: events sent`).toBeGreaterThan(TENANTS * EVENTS_PER_TENANT + 2000);
		expect(queue.length, `seed ${SEED}: messages`).toBeGreaterThan(250);

		let rounds = 0;
		let redeliveries = 0;
		let retries = 0;
		let flushCalls = 0;
		while (queue.length > 0) {
			rounds++;
			// A batch of 1 to 8 messages, drawn from the oldest 40, so order and company vary.
			const size = Math.min(queue.length, 1 + int(random, 8));
			const batch: Pending[] = [];
			for (let i = 0; i < size; i++) batch.push(queue.splice(int(random, Math.min(queue.length, 40)), 1)[0]!);
			const before = new Map(runs.map((run) => [run.tenant.id, run.faults.rpc.length]));

			const result = await deliver(batch.map((message) => rawMessage(message.id, message.text, message.attempts)));

			// One ingest RPC per tenant in the batch; its outcome decides the fate of all its messages.
			const outcome = new Map<string, RpcOutcome>();
			for (const tenant of new Set(batch.map((message) => message.tenant))) {
				const run = runOf.get(tenant)!;
				const calls = run.faults.rpc.slice(before.get(tenant)!);
				expect(calls.length, `seed ${SEED}: round ${rounds}, RPCs to ${tenant}`).toBe(1);
				outcome.set(tenant, calls[0]!);
				if (calls[0] !== "failed-before-commit") {
					run.consumed += batch
						.filter((message) => message.tenant === tenant)
						.reduce((n, message) => n + message.body.events.length, 0);
				}
			}
			const acked = batch.filter((message) => outcome.get(message.tenant) === "ok");
			const retried = batch.filter((message) => outcome.get(message.tenant) !== "ok");
			expect([...result.explicitAcks].sort(byText), `seed ${SEED}: round ${rounds} acks`).toEqual(
				acked.map((message) => message.id).sort(byText),
			);
			expect(
				[...result.retryMessages].sort((a, b) => byText(a.msgId, b.msgId)),
				`seed ${SEED}: round ${rounds} retries`,
			).toEqual(
				retried
					.map((message) => ({ msgId: message.id, delaySeconds: expectedDelay(message.attempts) }))
					.sort((a, b) => byText(a.msgId, b.msgId)),
			);

			// The broker redelivers what was retried, and now and then what was acked (a lost ack).
			for (const message of retried) {
				retries++;
				queue.splice(int(random, queue.length + 1), 0, { ...message, attempts: message.attempts + 1 });
			}
			for (const message of acked) {
				if (random() >= P_REDELIVER_ACKED) continue;
				redeliveries++;
				queue.splice(int(random, queue.length + 1), 0, { ...message, attempts: message.attempts + 1 });
			}

			// Now and then a tenant flushes, by request or by its alarm some seconds later.
			if (random() < P_FLUSH_ACTION) {
				flushCalls++;
				const stub = env.AGGREGATOR.getByName(runs[int(random, runs.length)]!.tenant.id);
				if (random() < 0.5) {
					await settle(stub.flush()).catch((err: unknown) => {
						expect(String(err), `seed ${SEED}: round ${rounds} flush`).toMatch(/D1 unavailable|crashed after D1 commit/);
					});
				} else {
					advanceClock(int(random, 20_000));
					await runDurableObjectAlarm(stub);
				}
			}
		}
		expect(retries, `seed ${SEED}: retried deliveries`).toBeGreaterThan(30);
		expect(redeliveries, `seed ${SEED}: redelivered acked messages`).toBeGreaterThan(10);
		expect(flushCalls, `seed ${SEED}: flushes during the run`).toBeGreaterThan(50);
		// Every kind of fault happened, several times.
		const count = <T>(pick: (run: TenantRun) => T[], value: T) =>
			runs.reduce((n, run) => n + pick(run).filter((item) => item === value).length, 0);
		expect(
			{
				rpcBeforeCommit: count((run) => run.faults.rpc, "failed-before-commit") > 10,
				rpcAfterCommit: count((run) => run.faults.rpc, "failed-after-commit") > 5,
				d1Failed: count((run) => run.faults.d1.map((call) => call.outcome), "failed") > 5,
				d1CrashedAfterCommit: count((run) => run.faults.d1.map((call) => call.outcome), "crashed-after-commit") > 5,
				analytics: runs.reduce((n, run) => n + run.faults.analyticsFailures, 0) > 5,
			},
			`seed ${SEED}: faults injected`,
		).toEqual({ rpcBeforeCommit: true, rpcAfterCommit: true, d1Failed: true, d1CrashedAfterCommit: true, analytics: true });

		// The faults end; every aggregator flushes what it holds and drains its Analytics Engine outbox.
		for (const run of runs) {
			run.faults.enabled = false;
			const stub = env.AGGREGATOR.getByName(run.tenant.id);
			expect((await flushVia(run.tenant)).status, `seed ${SEED}: final flush of ${run.tenant.id}`).toBe(200);
			for (let alarms = 0; (await runInDurableObject(stub, (_instance, state) => outbox(state).length)) > 0; alarms++) {
				expect(alarms, `seed ${SEED}: outbox drain of ${run.tenant.id}`).toBeLessThan(100);
				await runDurableObjectAlarm(stub);
			}
			await runInDurableObject(stub, (_instance, state) => {
				expect(pendingRowCount(state), `seed ${SEED}: rows left in ${run.tenant.id}`).toBe(0);
				expect(flushMeta(state), `seed ${SEED}: flush state of ${run.tenant.id}`).toEqual({});
			});
		}

		const from = iso(first - (first % DAY));
		const to = iso(first + SPAN - ((first + SPAN) % DAY) + DAY);
		const range = `from=${from}&to=${to}`;
		for (const { tenant, truths, faults, consumed } of runs) {
			const label = `seed ${SEED}: ${tenant.id}`;
			for (const granularity of ["hour", "day", "month"] as const) {
				const report = await getJson<{ items: UsageItem[] }>(`/v1/usage?${range}&granularity=${granularity}`, tenant.readKey);
				expect(report.items, `${label} usage by ${granularity}`).toEqual(expectedUsage(truths, granularity).items);
			}
			const csv = await call(`/v1/usage?${range}&granularity=day`, { key: tenant.readKey, headers: { accept: "text/csv" } });
			expect(await csv.text(), `${label} CSV usage by day`).toBe(expectedUsage(truths, "day").csv);
			for (const granularity of ["minute", "hour", "day"] as const) {
				const report = await getJson<{ items: StatsItem[] }>(`/v1/stats?${range}&granularity=${granularity}`, tenant.readKey);
				expect(report.items, `${label} stats by ${granularity}`).toEqual(expectedStats(truths, granularity));
			}

			// Every sealed batch was applied to D1 exactly once, whatever was retried; D1's ledger keeps
			// only the newest flush id, the one a retry could still send.
			const applied = faults.d1.filter((call) => call.applied === true);
			const sent = [...new Set(faults.d1.map((call) => call.flushId))];
			const flushFailures = faults.d1.filter((call) => call.outcome !== "ok").length;
			expect(
				applied.map((call) => call.flushId),
				`${label} D1 applies`,
			).toEqual(sent);
			const ledger = applied;
			expect(await d1Flushes(tenant.id), `${label} D1 ledger`).toEqual([
				{ flush_id: applied.at(-1)!.flushId, rows: applied.at(-1)!.rows },
			]);
			expect(await metricsOf(tenant), `${label} metrics`).toEqual(
				metricsWith(tenant, {
					consumed,
					duplicatesDropped: consumed - EVENTS_PER_TENANT,
					aggregated: EVENTS_PER_TENANT,
					flushedRows: ledger.reduce((rows, flush) => rows + flush.rows, 0),
					flushFailures,
				}),
			);

			// Analytics Engine got every flushed row's point exactly once: its counts add up to the ledger's.
			const sum = (kind: string, column: number) =>
				faults.written.filter((point) => point.blobs[0] === kind).reduce((total, point) => total + point.doubles[column]!, 0);
			expect(
				{ events: sum("event", 0), errors: sum("event", 2), durations: sum("event", 3), metered: sum("usage", 0) },
				`${label} Analytics Engine points`,
			).toEqual({
				events: truths.length,
				errors: truths.filter((truth) => truth.statusCode !== undefined && truth.statusCode >= 500).length,
				durations: truths.filter((truth) => truth.duration !== undefined).length,
				metered: truths.filter((truth) => truth.usage).length,
			});
		}
	});
});
