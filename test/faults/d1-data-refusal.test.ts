// D1 refusing a flush for a data reason (a NOT NULL column handed the NULL an Infinity becomes):
// the offending row is narrowed down and quarantined as a dead letter, visibly, and every other
// row, and every later delta of the tenant, flushes as usual.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import { countOnly as eventRow, d1Events, d1Usage, internals, recordFlushes } from "../aggregator/helpers";
import { deliver, eventsMessage, listDeadLetters, queuedEvent, replay } from "../consumer/helpers";
import { advanceClock, createTenant, useFrozenClock } from "../helpers";
import { flushVia, iso, metricsOf, metricsWith, MINUTE } from "../read/helpers";
import { alarmOf, freezeClock, previousHour, tokens } from "./helpers";

const clock = useFrozenClock(freezeClock);

describe("a row D1 refuses for a data reason", () => {
	it("is quarantined alone; the rest of its flush and every later one reach D1 exactly", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const hour = previousHour(clock.start);
		const minute = hour + 10 * MINUTE;
		await deliver([
			eventsMessage(`${tenant.id}/m1`, tenant.id, [
				queuedEvent({ id: "a", event: "api_call", timestamp: minute, usage: tokens(2_000_000) }),
				queuedEvent({ id: "b", event: "broken", timestamp: minute, performance: { duration: 5 } }),
				queuedEvent({ id: "c", event: "signup", timestamp: minute }),
			]),
		]);
		// What an unbounded duration once did: a sum that reached Infinity, which D1 receives as NULL.
		const sent = await runInDurableObject(stub, (instance: TenantAggregator, state) => {
			state.storage.sql.exec("UPDATE pending_events SET duration_sum = 1e308 * 10 WHERE event = 'broken'");
			return recordFlushes(instance);
		});

		const flushed = await flushVia(tenant);

		// The three rows (usage, api_call, signup, broken = 4) are halved until the broken one is alone.
		expect(await flushed.json()).toEqual({ flushed: 3 });
		expect(sent.map((flush) => flush.rows)).toEqual([4, 2, 2, 1, 1]);
		expect(await d1Usage(tenant.id)).toEqual([{ sku: "tokens", unit: "token", hour: iso(hour), micros: "2000000", events: 1 }]);
		expect(await d1Events(tenant.id)).toEqual([eventRow("api_call", iso(minute), 1), eventRow("signup", iso(minute), 1)]);
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { consumed: 3, aggregated: 3, flushedRows: 3, quarantinedRows: 1 }));

		// The alarm stores the quarantined row where the admin lists dead letters; it is not replayable.
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		const { items } = await listDeadLetters(`?tenant=${tenant.id}`);
		expect(items).toEqual([
			{
				id: expect.stringMatching(new RegExp(`^quarantine:${tenant.id}:[0-9a-f-]+:4:1$`)),
				tenant: tenant.id,
				error: expect.stringMatching(
					/^D1 refused this events rollup row: .*NOT NULL constraint failed: event_rollups\.duration_sum/,
				),
				attempts: 1,
				firstFailedAt: iso(clock.start),
				lastFailedAt: iso(clock.start),
				replayedAt: null,
				body: {
					quarantined: {
						rollup: "events",
						flushId: expect.stringMatching(/:4$/),
						row: {
							event: "broken",
							minute: iso(minute),
							count: 1,
							errors: 0,
							duration_count: 1,
							duration_sum: null,
							duration_min: 5,
							duration_max: 5,
						},
					},
				},
			},
		]);
		expect((await replay({ ids: [items[0]!.id] })).skipped).toEqual([
			{ id: items[0]!.id, reason: expect.stringMatching(/^not replayable: /) },
		]);
		await runInDurableObject(stub, (_instance, state) =>
			expect(state.storage.sql.exec("SELECT count(*) AS n FROM quarantine").one().n).toBe(0),
		);

		// The tenant's next usage is not stuck behind it.
		await deliver([
			eventsMessage(`${tenant.id}/m2`, tenant.id, [
				queuedEvent({ id: "d", event: "api_call", timestamp: minute, usage: tokens(500_000) }),
			]),
		]);
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 2 });
		expect(await d1Usage(tenant.id)).toEqual([{ sku: "tokens", unit: "token", hour: iso(hour), micros: "2500000", events: 2 }]);
		expect(await d1Events(tenant.id)).toEqual([eventRow("api_call", iso(minute), 2), eventRow("signup", iso(minute), 1)]);
	});

	it("keeps a quarantined row in the aggregator until D1 takes the dead letter", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const minute = previousHour(clock.start) + 20 * MINUTE;
		await deliver([
			eventsMessage(`${tenant.id}/m1`, tenant.id, [
				queuedEvent({ id: "x", event: "broken", timestamp: minute, performance: { duration: 1 } }),
			]),
		]);
		const deadLetterCalls = await runInDurableObject(stub, (instance: TenantAggregator, state) => {
			state.storage.sql.exec("UPDATE pending_events SET duration_sum = 1e308 * 10");
			const sinks = internals(instance).sinks;
			const real = sinks.deadLetters;
			const seen = { calls: 0 };
			sinks.deadLetters = async (rows) => {
				if (++seen.calls === 1) throw new Error("D1 unavailable");
				return real(rows);
			};
			return seen;
		});
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 0 });

		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(deadLetterCalls.calls).toBe(1);
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items).toEqual([]);
		expect((await stub.metrics()).quarantinePending).toBe(1);

		// Retried after a backoff: 5 s.
		expect(await alarmOf(tenant.id)).toBe(clock.start + 5_000);
		advanceClock(5_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(deadLetterCalls.calls).toBe(2);
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items.map((item) => item.tenant)).toEqual([tenant.id]);
		expect((await stub.metrics()).quarantinePending).toBe(0);
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { consumed: 1, aggregated: 1, quarantinedRows: 1, deadLettered: 1 }));
	});
});
