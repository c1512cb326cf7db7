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

		// The batch is 40 rows: usage, api_call, broken and signup (4), and 36 series rows, each name's 4
		// dimensions × minute, hour and day. A split halves what the aggregator holds, the 4 rollup rows
		// and the 12 series minutes (hours and days are expanded at each flush), until broken is alone:
		// 1 (40 rows) → 2: the rollup rows + api_call's minutes (4 + 12), 3: broken's and signup's
		// minutes (24, flushed); 2 → 4: the rollup rows (4), 5: api_call's minutes (12, flushed);
		// 4 → 6: usage, api_call (2, flushed), 7: broken, signup (2); 7 → 8: broken (1, quarantined),
		// 9: signup (1, flushed).
		expect(await flushed.json()).toEqual({ flushed: 24 + 12 + 2 + 1 });
		expect(sent.map((flush) => flush.rows)).toEqual([40, 16, 24, 4, 12, 2, 2, 1, 1]);
		expect(await d1Usage(tenant.id)).toEqual([{ sku: "tokens", unit: "token", hour: iso(hour), micros: "2000000", events: 1 }]);
		expect(await d1Events(tenant.id)).toEqual([eventRow("api_call", iso(minute), 1), eventRow("signup", iso(minute), 1)]);
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { consumed: 3, aggregated: 3, flushedRows: 39, quarantinedRows: 1 }));

		// The alarm stores the quarantined row where the admin lists dead letters; it is not replayable.
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		const { items } = await listDeadLetters(`?tenant=${tenant.id}`);
		expect(items).toEqual([
			{
				id: expect.stringMatching(new RegExp(`^quarantine:${tenant.id}:[0-9a-f-]+:8:1$`)),
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
						flushId: expect.stringMatching(/:8$/),
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
		// 1 usage + 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 14 });
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
		// Only the event row is refused; its 12 series rows (4 dimensions × minute, hour, day) reach D1.
		// Held: the event row and 4 series minutes. 1 (13 rows) → 2: the event row + 2 minutes (1 + 6),
		// 3: 2 minutes (6, flushed); 2 → 4: the event row + 1 minute (1 + 3), 5: 1 minute (3, flushed);
		// 4 → 6: the event row (quarantined), 7: 1 minute (3, flushed).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 12 });

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
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: 1, aggregated: 1, flushedRows: 12, quarantinedRows: 1, deadLettered: 1 }),
		);
	});
});
