// A poison message through the real local queues: it arrives in dead_letters at once with its
// reason and a superjson body that keeps its typed values (a Date, a big integer), even near the
// queue's message size limit, and is listed but never replayed.
import { env } from "cloudflare:workers";
import superjson from "superjson";
import { describe, expect, it, vi } from "vitest";
import { ISO_INSTANT, listDeadLetters, replay, type DeadLetterItem } from "../consumer/helpers";
import { ADMIN_TOKEN, call, createTenant, useFrozenClock } from "../helpers";
import { iso, metricsOf, metricsWith, MINUTE } from "../read/helpers";
import { freezeClock, previousHour } from "./helpers";

const clock = useFrozenClock(freezeClock);

describe("a poison message", () => {
	it("arrives in dead_letters with its reason and a superjson body that keeps its Date, and is not replayable", async () => {
		const tenant = await createTenant();
		const minute = previousHour(clock.start) + 42 * MINUTE;
		// A body no producer of ours sends: a Date where epoch milliseconds belong (the v8 content type keeps it a Date).
		const body = {
			v: 1,
			tenant: tenant.id,
			events: [{ id: "x1", event: "api_call", timestamp: new Date(minute), properties: { plan: "pro" } }],
		};

		await env.EVENTS.send(body, { contentType: "v8" });

		const row = await vi.waitFor(
			async () => {
				const { results } = await env.DB.prepare("SELECT * FROM dead_letters WHERE tenant = ?1")
					.bind(tenant.id)
					.all<{ id: string; body: string; error: string; attempts: number }>();
				expect(results).toHaveLength(1);
				return results[0]!;
			},
			{ timeout: 10_000, interval: 50 },
		);
		expect(row.error).toBe("undecodable message: events[0].timestamp: must be epoch milliseconds");
		expect(row.attempts).toBe(1);
		const stored = superjson.parse<typeof body>(row.body);
		expect(stored).toEqual(body);
		expect(stored.events[0]!.timestamp).toBeInstanceOf(Date);
		expect(stored.events[0]!.timestamp.getTime()).toBe(minute);

		// Over the admin API the Date is its JSON text.
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items).toEqual([
			{
				id: row.id,
				tenant: tenant.id,
				error: row.error,
				attempts: 1,
				firstFailedAt: expect.stringMatching(ISO_INSTANT),
				lastFailedAt: expect.stringMatching(ISO_INSTANT),
				replayedAt: null,
				body: {
					v: 1,
					tenant: tenant.id,
					events: [{ id: "x1", event: "api_call", timestamp: iso(minute), properties: { plan: "pro" } }],
				},
			},
		]);
		// Replaying it could only fail again: it is skipped with the reason, and stays unreplayed.
		const skipped = {
			replayed: [],
			skipped: [{ id: row.id, reason: "not replayable: events[0].timestamp: must be epoch milliseconds" }],
		};
		expect(await replay({ ids: [row.id] })).toEqual(skipped);
		expect(await replay({ tenant: tenant.id })).toEqual(skipped);
		expect((await listDeadLetters(`?tenant=${tenant.id}`)).items[0]!.replayedAt).toBeNull();
		expect(await metricsOf(tenant)).toEqual(metricsWith(tenant, { deadLettered: 1 }));
	});

	it("is dead-lettered at once with its reason even when its body is near the queue's message size limit", async () => {
		const tenant = await createTenant();
		// 9000 short properties: about 107 KB of JSON, within what the events queue carries (128 KB).
		const properties = Object.fromEntries(Array.from({ length: 9000 }, (_, i) => [`k${i}`, "v"]));
		const body = { v: 1, tenant: tenant.id, events: [{ id: "x1", event: "api_call", timestamp: "bad", properties }] };
		expect(new TextEncoder().encode(JSON.stringify(body)).byteLength).toBeLessThan(120_000);
		vi.spyOn(Math, "random").mockReturnValue(0);

		await env.EVENTS.send(body, { contentType: "json" });

		const row = await vi.waitFor(
			async () => {
				const { results } = await env.DB.prepare("SELECT * FROM dead_letters WHERE tenant = ?1")
					.bind(tenant.id)
					.all<{ body: string; error: string; attempts: number }>();
				expect(results).toHaveLength(1);
				return results[0]!;
			},
			{ timeout: 20_000, interval: 100 },
		);
		// Straight from the first delivery, with the reason, not after max_retries without it.
		expect({ error: row.error, attempts: row.attempts }).toEqual({
			error: "undecodable message: events[0].timestamp: must be epoch milliseconds",
			attempts: 1,
		});
		expect(superjson.parse(row.body)).toEqual(body);
	});

	it("keeps a body with a big integer, and the admin API still lists it", async () => {
		const tenant = await createTenant();
		const seats = 2n ** 70n;
		const body = { v: 1, tenant: tenant.id, events: [{ id: "x1", event: "api_call", timestamp: "now", properties: { seats } }] };

		await env.EVENTS.send(body, { contentType: "v8" });

		const row = await vi.waitFor(
			async () => {
				const { results } = await env.DB.prepare("SELECT * FROM dead_letters WHERE tenant = ?1")
					.bind(tenant.id)
					.all<{ id: string; body: string }>();
				expect(results).toHaveLength(1);
				return results[0]!;
			},
			{ timeout: 10_000, interval: 50 },
		);
		expect(superjson.parse<typeof body>(row.body).events[0]!.properties.seats).toBe(seats);
		// The dead letters are there for an operator to inspect: one typed value must not break the list.
		const response = await call(`/v1/admin/dead-letters?tenant=${tenant.id}`, { key: ADMIN_TOKEN });
		expect(response.status).toBe(200);
		const { items } = await response.json<{ items: DeadLetterItem[] }>();
		expect(items.map((item) => [item.id, item.error])).toEqual([
			[row.id, "undecodable message: events[0].timestamp: must be epoch milliseconds"],
		]);
	});
});
