// D1 down for three flushes, then back: the aggregator keeps the sealed rollups, backs off 2 s, 4 s,
// 8 s, keeps events that arrive meanwhile apart, and writes everything to D1 exactly once.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { d1Events, d1Flushes, d1Usage, failD1, flushMeta, incarnation, pendingRowCount } from "../aggregator/helpers";
import { deliver, eventsMessage, queuedEvent } from "../consumer/helpers";
import { advanceClock, call, createTenant, useFrozenClock } from "../helpers";
import { countOnly, flushVia, HOUR, iso, metricsOf, metricsWith, MINUTE, statsOf, usageOf } from "../read/helpers";
import { alarmOf, freezeClock, healthOf, previousHour, tokens } from "./helpers";

const clock = useFrozenClock(freezeClock);

describe("D1 failing for three flushes", () => {
	it("backs off, keeps the deltas and the outage's events, and writes each exactly once when D1 is back", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const hour = previousHour(clock.start);
		const minute = hour + 30 * MINUTE;

		// Before the outage: two usage rows' worth of api calls and a page view (3 pending rows).
		const before = await deliver([
			eventsMessage(`${tenant.id}/m1`, tenant.id, [
				queuedEvent({ id: "a1", timestamp: minute, usage: tokens(1_500_000), performance: { duration: 10, statusCode: 200 } }),
				queuedEvent({ id: "a2", timestamp: minute + 1, usage: tokens(250_000), performance: { duration: 30, statusCode: 503 } }),
				queuedEvent({ id: "a3", timestamp: minute + 2, event: "page_view" }),
			]),
		]);
		expect(before.explicitAcks).toEqual([`${tenant.id}/m1`]);
		const d1 = await runInDurableObject(stub, (instance) => failD1(instance, 3));

		// Failure 1: the flush alarm.
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		await runInDurableObject(stub, (_instance, state) => {
			expect(flushMeta(state)).toEqual({ sealed_batch: "1", flush_failures: "1", retry_at: String(clock.start + 2_000) });
			expect(pendingRowCount(state)).toBe(3);
		});
		expect(await alarmOf(tenant.id)).toBe(clock.start + 2_000);

		// Events arriving during the outage, one of them a resent id, open a batch of their own.
		const during = await deliver([
			eventsMessage(`${tenant.id}/m2`, tenant.id, [
				queuedEvent({ id: "b1", timestamp: minute + 3, usage: tokens(2_000_000), performance: { duration: 5 } }),
				queuedEvent({ id: "a1", timestamp: minute, usage: tokens(1_500_000), performance: { duration: 10, statusCode: 200 } }),
				queuedEvent({
					id: "b2",
					timestamp: minute + MINUTE,
					event: "checkout",
					usage: { sku: "storage", unit: "gb_hour", micros: 1 },
				}),
			]),
		]);
		expect(during.explicitAcks).toEqual([`${tenant.id}/m2`]);

		// Failure 2: the alarm when the 2 s backoff ends.
		advanceClock(2_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		await runInDurableObject(stub, (_instance, state) => {
			expect(flushMeta(state)).toEqual({ sealed_batch: "1", flush_failures: "2", retry_at: String(clock.start + 6_000) });
			// 3 sealed rows, 4 open ones: the retry resends exactly what the first attempt sent.
			expect(pendingRowCount(state)).toBe(7);
		});
		expect(await alarmOf(tenant.id)).toBe(clock.start + 6_000);

		// Failure 3: an explicit flush does not wait for the backoff, and answers 503.
		advanceClock(4_000);
		const refused = await flushVia(tenant);
		expect(refused.status).toBe(503);
		expect(refused.headers.get("retry-after")).toBe("5");
		expect(await refused.json()).toEqual({ error: { code: "unavailable", message: "Flush failed; the deltas are kept and retried" } });
		await runInDurableObject(stub, (_instance, state) => {
			expect(flushMeta(state)).toEqual({ sealed_batch: "1", flush_failures: "3", retry_at: String(clock.start + 14_000) });
		});
		expect(d1.calls).toBe(3);

		// Meanwhile nothing reached D1, and the metrics and the health monitor say why.
		expect(await d1Usage(tenant.id)).toEqual([]);
		expect(await d1Events(tenant.id)).toEqual([]);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: 6, duplicatesDropped: 1, aggregated: 5, flushFailures: 3, oldestUnflushedAgeMs: 6_000 }),
		);
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [{ tenant: tenant.id, since: clock.start, failures: 3 }], spills: [] });

		// An alarm that fires before the 8 s backoff ends leaves D1 alone.
		advanceClock(7_999);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(d1.calls).toBe(3);
		expect(await alarmOf(tenant.id)).toBe(clock.start + 14_000);

		// D1 is back: the alarm at the end of the backoff writes the sealed batch, then the open one.
		advanceClock(1);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(d1.calls).toBe(5);

		const inc = await runInDurableObject(stub, (_instance, state) => {
			expect(flushMeta(state)).toEqual({});
			expect(pendingRowCount(state)).toBe(0);
			return incarnation(state);
		});
		// The ledger keeps only the newest flush: batch 1 can no longer be resent once batch 2 was sealed.
		// Batch 2: 2 usage + 2 event rows + 24 series rows (api_call's and checkout's 4 dimensions ×
		// minute, hour, day).
		expect(await d1Flushes(tenant.id)).toEqual([{ flush_id: `${inc}:2`, rows: 28 }]);
		expect(await d1Usage(tenant.id)).toEqual([
			{ sku: "storage", unit: "gb_hour", hour: iso(hour), micros: "1", events: 1 },
			{ sku: "tokens", unit: "token", hour: iso(hour), micros: "3750000", events: 3 },
		]);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
			{ sku: "storage", unit: "gb_hour", period: iso(hour), quantity: 0.000001, quantityDecimal: "0.000001", events: 1 },
			{ sku: "tokens", unit: "token", period: iso(hour), quantity: 3.75, quantityDecimal: "3.75", events: 3 },
		]);
		expect(await statsOf(tenant, hour, hour + HOUR)).toEqual([
			{ event: "api_call", period: iso(minute), count: 3, errors: 1, duration: { count: 3, sum: 45, min: 5, max: 30 } },
			countOnly("page_view", minute, 1),
			countOnly("checkout", minute + MINUTE, 1),
		]);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				consumed: 6,
				duplicatesDropped: 1,
				aggregated: 5,
				// Batch 1: 1 usage + 2 event rows + 27 series rows, 9 per grain (api_call's total, route "",
				// status 200 and 503, country "", and page_view's 4); then batch 2's 28.
				flushedRows: 30 + 28,
				flushFailures: 3,
				oldestUnflushedAgeMs: null,
			}),
		);
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [], spills: [] });

		// A later flush finds nothing to write, and D1 stays as it is.
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 0 });
		expect(d1.calls).toBe(5);
		expect(await d1Flushes(tenant.id)).toHaveLength(1);
	});

	it("reports the tenant critical once its flushes have failed for over 5 minutes, and healthy again after recovery", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 10 * MINUTE;
		await deliver([eventsMessage(`${tenant.id}/m1`, tenant.id, [queuedEvent({ id: "e1", timestamp: minute })])]);
		const d1 = await runInDurableObject(stub, (instance) => failD1(instance, 2));

		expect((await flushVia(tenant)).status).toBe(503);
		const degraded = await call("/v1/health");
		expect(degraded.status).toBe(200);
		expect(await degraded.json()).toMatchObject({
			status: "degraded",
			checks: { flushes: { retryingTenants: 1, failingOverThreshold: [], oldestFailureSince: iso(clock.start) } },
		});

		// Five minutes and a millisecond of failing: critical, naming the tenant.
		advanceClock(5 * MINUTE + 1);
		expect((await flushVia(tenant)).status).toBe(503);
		const critical = await call("/v1/health");
		expect(critical.status).toBe(503);
		expect(await critical.json()).toMatchObject({
			status: "critical",
			checks: { flushes: { retryingTenants: 1, failingOverThreshold: [tenant.id], oldestFailureSince: iso(clock.start) } },
		});
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [{ tenant: tenant.id, since: clock.start, failures: 2 }], spills: [] });

		// 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 13 });
		expect(d1.calls).toBe(3);
		const healthy = await call("/v1/health");
		expect(healthy.status).toBe(200);
		expect(await healthy.json()).toMatchObject({
			status: "healthy",
			checks: { flushes: { retryingTenants: 0, failingOverThreshold: [], oldestFailureSince: null } },
		});
		expect(await statsOf(tenant, minute, minute + MINUTE)).toEqual([countOnly("api_call", minute, 1)]);
		expect((await metricsOf(tenant)).flushFailures).toBe(2);
	});
});

describe("the health monitor missing a recovery", () => {
	it("keeps telling it until it hears, so health never sticks at a state that has passed", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 5 * MINUTE;
		await deliver([eventsMessage(`${tenant.id}/m1`, tenant.id, [queuedEvent({ id: "h1", timestamp: minute })])]);
		await runInDurableObject(stub, (instance) => failD1(instance, 1));
		expect((await flushVia(tenant)).status).toBe(503);
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [{ tenant: tenant.id, since: clock.start, failures: 1 }], spills: [] });

		// The monitor is unreachable for the aggregator's next call: the recovery report.
		const monitor = await runInDurableObject(stub, (instance) => {
			const inner = instance as unknown as { env: Env };
			const real = inner.env.HEALTH;
			const seen = { calls: 0 };
			inner.env = {
				...inner.env,
				HEALTH: {
					getByName: (name: string) => {
						if (++seen.calls === 1) throw new Error("health monitor unreachable");
						return real.getByName(name);
					},
				} as unknown as Env["HEALTH"],
			};
			return seen;
		});
		const retried = advanceClock(2_000);
		// 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 13 });

		expect(monitor.calls).toBe(1);
		// D1 is fine again, the monitor does not know yet: the alarm retries the report after 5 s.
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [{ tenant: tenant.id, since: clock.start, failures: 1 }], spills: [] });
		expect(await alarmOf(tenant.id)).toBe(retried + 5_000);

		advanceClock(5_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(monitor.calls).toBe(2);
		expect(await healthOf(tenant.id)).toEqual({ failingFlushes: [], spills: [] });
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { consumed: 1, aggregated: 1, flushedRows: 13, flushFailures: 1 }));
	});
});
