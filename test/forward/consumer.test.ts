// The forward consumer on a virtual clock with the production backoff: fan-out where one outage
// never resends to another destination, a 5-minute outage that ends with each event delivered
// exactly once per destination, and the dead letter past the budget with its replay.
import { describe, expect, it } from "vitest";
import { FORWARD_MAX_ATTEMPTS, forwardDelaySeconds } from "../../src/forward/consumer";
import { createTenant, freezeClockAt, advanceClock, getJson, useFrozenClock, call } from "../helpers";
import { consume, createDestination, eventIdsOf, FakeForwardQueue, forwardEvent, stubProviders } from "./helpers";
import { env } from "cloudflare:workers";

useFrozenClock(() => freezeClockAt(Date.UTC(2026, 10, 20, 12)));

/** Delivers every pending retry in due order, moving the virtual clock to each; returns how many ran. */
async function drain(queue: FakeForwardQueue, untilMs = Infinity): Promise<number> {
	let runs = 0;
	for (let next = queue.takeNext(); next; next = queue.takeNext()) {
		if (next.dueAt > untilMs) {
			queue.sent.push(next);
			break;
		}
		if (next.dueAt > Date.now()) advanceClock(next.dueAt - Date.now());
		await consume(queue, [next.body]);
		runs++;
	}
	return runs;
}

interface Health {
	destinations: { id: string; status: string; delivered: number; consecutiveFailures: number }[];
}

describe("the forward consumer", () => {
	it("delivers every event exactly once per destination across a 5-minute outage of one", async () => {
		const tenant = await createTenant();
		const start = Date.now();
		const ph = await createDestination(tenant.readKey, { kind: "posthog", host: "https://posthog.test", apiKey: "k" });
		const sg = await createDestination(tenant.readKey, { kind: "segment", host: "https://segment.test", writeKey: "w" });
		const hook = await createDestination(tenant.readKey, {
			kind: "webhook",
			url: "https://hooks.test/in",
			signingSecret: "0123456789abcdef",
		});
		const seen = stubProviders((url, now) =>
			url.hostname === "segment.test" && now < start + 5 * 60_000
				? { status: 503, headers: { "retry-after": "30" } }
				: { status: 200 },
		);
		const queue = new FakeForwardQueue();
		const events = Array.from({ length: 20 }, () => forwardEvent());
		const bodies = [0, 5, 10, 15].map((i) => ({ v: 1, tenant: tenant.id, events: events.slice(i, i + 5) }));
		expect(await consume(queue, bodies)).toEqual({ acked: 4, retried: 0 });
		// One retry message per failed (message, destination), for segment only, never waiting less than Retry-After.
		expect(queue.sent.map((m) => (m.body as { destination: string }).destination)).toEqual([sg.id, sg.id, sg.id, sg.id]);
		expect(queue.sent.every((m) => m.delaySeconds >= 30)).toBe(true);

		const during = await getJson<Health>("/v1/metrics", tenant.readKey);
		expect(during.destinations.find((d) => d.id === sg.id)!.status).toBe("degraded");
		await drain(queue);
		expect(Date.now() - start).toBeGreaterThanOrEqual(5 * 60_000);

		for (const [d, host] of [
			[ph, "posthog.test"],
			[sg, "segment.test"],
			[hook, "hooks.test"],
		] as const) {
			const delivered = seen.filter((r) => new URL(r.url).hostname === host && r.status === 200).flatMap(eventIdsOf);
			expect(delivered.sort(), d.kind as string).toEqual(events.map((e) => e.id).sort());
		}
		const after = await getJson<Health>("/v1/metrics", tenant.readKey);
		// Created in the same frozen millisecond, they are listed by id: compare as a set.
		expect(after.destinations.map((d) => [d.id, d.status, d.delivered, d.consecutiveFailures]).sort()).toEqual(
			[
				[ph.id, "healthy", 20, 0],
				[sg.id, "healthy", 20, 0],
				[hook.id, "healthy", 20, 0],
			].sort(),
		);
	});

	it("dead-letters a batch after FORWARD_MAX_ATTEMPTS, reports it critical, and replays it", async () => {
		const tenant = await createTenant();
		const down = await createDestination(tenant.readKey, { kind: "amplitude", host: "https://amplitude.test", apiKey: "a" });
		let up = false;
		stubProviders(() => ({ status: up ? 200 : 500 }));
		const queue = new FakeForwardQueue();
		const events = [forwardEvent(), forwardEvent()];
		await consume(queue, [{ v: 1, tenant: tenant.id, events }]);
		const runs = await drain(queue);
		expect(runs).toBe(FORWARD_MAX_ATTEMPTS - 1);
		const letters = await getJson<{ deadLetters: { events: { id: string }[]; attempts: number }[] }>(
			`/v1/destinations/${down.id}/dead-letters`,
			tenant.readKey,
		);
		expect(letters.deadLetters).toHaveLength(1);
		expect(letters.deadLetters[0]!.attempts).toBe(FORWARD_MAX_ATTEMPTS);
		expect(letters.deadLetters[0]!.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
		const health = await getJson<Health>("/v1/metrics", tenant.readKey);
		expect(health.destinations[0]!.status).toBe("critical");
		const pipeline = await (await call("/v1/health")).json<{ checks: { destinations: { critical: number } } }>();
		expect(pipeline.checks.destinations.critical).toBeGreaterThanOrEqual(1);

		up = true;
		const replay = await call(`/v1/destinations/${down.id}/dead-letters/replay`, { method: "POST", key: tenant.readKey });
		expect(await replay.json()).toEqual({ replayed: 1, events: 2 });
		expect((await getJson<{ deadLetters: unknown[] }>(`/v1/destinations/${down.id}/dead-letters`, tenant.readKey)).deadLetters).toEqual(
			[],
		);
		const row = await env.DB.prepare("SELECT count(*) AS n FROM forward_dead_letters WHERE destination = ?1")
			.bind(down.id)
			.first<{ n: number }>();
		expect(row!.n).toBe(0);
	});

	it("dead-letters at once what a provider refuses with a 4xx, and drops a retry for a deleted destination", async () => {
		const tenant = await createTenant();
		const d = await createDestination(tenant.readKey, { kind: "mixpanel", host: "https://mixpanel.test", token: "t" });
		stubProviders(() => ({ status: 401 }));
		const queue = new FakeForwardQueue();
		await consume(queue, [{ v: 1, tenant: tenant.id, events: [forwardEvent()] }]);
		expect(queue.sent).toEqual([]);
		const letters = await getJson<{ deadLetters: { error: string }[] }>(`/v1/destinations/${d.id}/dead-letters`, tenant.readKey);
		expect(letters.deadLetters[0]!.error).toMatch(/^refused by the provider: HTTP 401/);
		const outcome = await consume(queue, [
			{ v: 1, tenant: tenant.id, destination: "dst_gone000000000000", events: [forwardEvent()], attempt: 3, firstFailedAt: 1 },
		]);
		expect(outcome).toEqual({ acked: 1, retried: 0 });
	});

	it("acks an undecodable message rather than retrying it forever", async () => {
		expect(await consume(new FakeForwardQueue(), [{ v: 2 }, "junk"])).toEqual({ acked: 2, retried: 0 });
	});

	it("waits the backoff step or a longer Retry-After, capped at an hour", () => {
		expect(forwardDelaySeconds(env, 1, undefined, () => 1)).toBe(10);
		expect(forwardDelaySeconds(env, 3, undefined, () => 1)).toBe(40);
		expect(forwardDelaySeconds(env, 11, undefined, () => 1)).toBe(1800);
		expect(forwardDelaySeconds(env, 1, 120, () => 1)).toBe(120);
		expect(forwardDelaySeconds(env, 1, 99_999, () => 1)).toBe(3600);
	});
});
