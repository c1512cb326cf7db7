// Analytics Engine throwing: D1 still gets exact totals at once, and the dashboard points wait in
// the aggregator's outbox until Analytics Engine takes them, each written exactly once.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi, type MockInstance } from "vitest";
import { MINUTE_RETENTION_MS } from "../../src/aggregator/compaction";
import { type TenantAggregator } from "../../src/aggregator/aggregator";
import { RETRY_POLICIES } from "../../src/aggregator/state";
import { internals, outbox } from "../aggregator/helpers";
import { deliver, eventsMessage, queuedEvent } from "../consumer/helpers";
import { advanceClock, createTenant, InjectedFault, useFrozenClock } from "../helpers";
import { countOnly, flushVia, HOUR, iso, metricsOf, metricsWith, MINUTE, statsOf, usageOf } from "../read/helpers";
import { alarmOf, freezeClock, previousHour } from "./helpers";
import type { DataPoint } from "../../src/sinks/analytics";

const OUTBOX_BACKOFF = RETRY_POLICIES.outbox;

const clock = useFrozenClock(freezeClock);

type WriteSpy = MockInstance<AnalyticsEngineDataset["writeDataPoint"]>;

/** Watches the real Analytics Engine binding of the tenant's aggregator (a no-op locally). */
function watchAnalytics(tenant: string): Promise<WriteSpy> {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (instance: TenantAggregator) =>
		vi.spyOn(internals(instance).env.ANALYTICS, "writeDataPoint"),
	);
}

/** Points the binding took: calls that returned, not the ones that threw. */
function written(spy: WriteSpy): DataPoint[] {
	return spy.mock.calls.filter((_call, i) => spy.mock.results[i]!.type === "return").map(([point]) => point as DataPoint);
}

const byBlobs = (points: DataPoint[]) => [...points].sort((a, b) => (JSON.stringify(a.blobs) < JSON.stringify(b.blobs) ? -1 : 1));

describe("Analytics Engine failing", () => {
	it("keeps D1 exact, keeps the points across failing alarms, and writes each once when it is back", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const hour = previousHour(clock.start);
		const minute = hour + 42 * MINUTE;
		await deliver([
			eventsMessage(`${tenant.id}/m1`, tenant.id, [
				queuedEvent({
					id: "a",
					timestamp: minute,
					usage: { sku: "tokens", unit: "token", micros: 1_250_000 },
					performance: { duration: 8, statusCode: 502 },
				}),
				queuedEvent({ id: "b", timestamp: minute, usage: { sku: "tokens", unit: "token", micros: 750_000 } }),
				queuedEvent({ id: "c", timestamp: minute + MINUTE, event: "page_view" }),
			]),
		]);
		const spy = await watchAnalytics(tenant.id);
		// The binding throws on its first write of each of the next two flush invocations.
		const unavailable = () => {
			throw new InjectedFault("Analytics Engine unavailable");
		};
		spy.mockImplementationOnce(unavailable);

		const flushed = await flushVia(tenant);

		// D1 has committed the flush: the answer and the reports do not depend on Analytics Engine.
		// 1 usage + 2 event rows (a point each) + 27 series rows (none): 9 per grain (minute, hour, day),
		// api_call's total, route "", status 502 and "", country "" (5) and page_view's 4.
		expect(await flushed.json()).toEqual({ flushed: 30 });
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
			{ sku: "tokens", unit: "token", period: iso(hour), quantity: 2, quantityDecimal: "2", events: 2 },
		]);
		expect(await statsOf(tenant, hour, hour + HOUR)).toEqual([
			{ event: "api_call", period: iso(minute), count: 2, errors: 1, duration: { count: 1, sum: 8, min: 8, max: 8 } },
			countOnly("page_view", minute + MINUTE, 1),
		]);
		const expected = byBlobs([
			{ indexes: [tenant.id], blobs: ["event", "api_call", "", iso(minute), "", ""], doubles: [2, 0, 1, 1, 8, 8, 8] },
			{ indexes: [tenant.id], blobs: ["event", "page_view", "", iso(minute + MINUTE), "", ""], doubles: [1, 0, 0, 0, 0, 0, 0] },
			{ indexes: [tenant.id], blobs: ["usage", "tokens", "token", iso(hour), "", ""], doubles: [2, 2, 0, 0, 0, 0, 0] },
		]);
		expect(written(spy)).toEqual([]);
		await runInDurableObject(stub, (_instance, state) => expect(byBlobs(outbox(state))).toEqual(expected));
		// The kept points are retried after a backoff (5 s, then 10 s), never in a spin.
		expect(await alarmOf(tenant.id)).toBe(clock.start + OUTBOX_BACKOFF.baseMs);

		advanceClock(OUTBOX_BACKOFF.baseMs);
		spy.mockImplementationOnce(unavailable);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(written(spy)).toEqual([]);
		await runInDurableObject(stub, (_instance, state) => expect(outbox(state)).toHaveLength(3));
		expect(await alarmOf(tenant.id)).toBe(clock.start + 3 * OUTBOX_BACKOFF.baseMs);

		advanceClock(2 * OUTBOX_BACKOFF.baseMs);
		expect(await runDurableObjectAlarm(stub)).toBe(true);

		expect(spy).toHaveBeenCalledTimes(5);
		expect(byBlobs(written(spy))).toEqual(expected);
		await runInDurableObject(stub, (_instance, state) => expect(outbox(state)).toEqual([]));
		// Only folding D1's minutes into hours a week later is left; that alarm writes no points.
		expect(await alarmOf(tenant.id)).toBe(hour + HOUR + MINUTE_RETENTION_MS);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(spy).toHaveBeenCalledTimes(5);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual([
			{ sku: "tokens", unit: "token", period: iso(hour), quantity: 2, quantityDecimal: "2", events: 2 },
		]);
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { consumed: 3, aggregated: 3, flushedRows: 30 }));
	});

	it("keeps the points of several flushes while it is down, backing off, then drains at most 250 per invocation, each once", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 5 * MINUTE;
		const names = (from: number, count: number) =>
			Array.from({ length: count }, (_, i) => `event-${String(from + i).padStart(3, "0")}`);
		const spy = await watchAnalytics(tenant.id);
		// The aggregator's Analytics Engine sink is down for its next three invocations.
		const sink = await runInDurableObject(stub, (instance: TenantAggregator) => {
			const sinks = internals(instance).sinks;
			const real = sinks.analytics;
			const seen = { calls: 0 };
			sinks.analytics = (points) => {
				if (++seen.calls <= 3) throw new InjectedFault("Analytics Engine unavailable");
				return real(points);
			};
			return seen;
		});

		// Two flushes while it is down: 200 event rows, then 120 (20 of them the same keys again), each
		// with 12 series rows (4 dimensions × minute, hour, day), which get no points.
		await deliver([
			eventsMessage(
				`${tenant.id}/m1`,
				tenant.id,
				names(0, 200).map((event, i) => queuedEvent({ id: `a${i}`, event, timestamp: minute })),
			),
		]);
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 200 + 200 * 12 });
		// Each failure doubles the wait: a write is only tried once it is over.
		advanceClock(OUTBOX_BACKOFF.baseMs);
		await deliver([
			eventsMessage(
				`${tenant.id}/m2`,
				tenant.id,
				names(180, 120).map((event, i) => queuedEvent({ id: `b${i}`, event, timestamp: minute })),
			),
		]);
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 120 + 120 * 12 });
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(sink.calls).toBe(2);
		advanceClock(2 * OUTBOX_BACKOFF.baseMs);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(sink.calls).toBe(3);
		await runInDurableObject(stub, (_instance, state) => expect(outbox(state)).toHaveLength(320));
		expect(spy).not.toHaveBeenCalled();

		// Back: the first flush's 200 points (the second's 120 would pass 250), then those 120.
		const now = advanceClock(4 * OUTBOX_BACKOFF.baseMs);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(spy).toHaveBeenCalledTimes(200);
		expect(await alarmOf(tenant.id)).toBe(now);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(spy).toHaveBeenCalledTimes(320);

		const points = written(spy);
		// In flush order: the first flush's 200 points, then the second's 120.
		expect(points.map((point) => point.blobs[1])).toEqual([...names(0, 200).sort(), ...names(180, 120).sort()]);
		expect(points.reduce((sum, point) => sum + point.doubles[0]!, 0)).toBe(320);
		await runInDurableObject(stub, (_instance, state) => expect(outbox(state)).toEqual([]));
		expect(await statsOf(tenant, minute, minute + MINUTE)).toEqual(
			names(0, 300).map((event) => countOnly(event, minute, event >= "event-180" && event < "event-200" ? 2 : 1)),
		);
	});
});
