// POST /v1/admin/backfill: a meter created after its events were archived covers them once
// replayed from R2, exactly; a repeated backfill adds nothing, events the meter counted live are
// never counted again, and bad requests answer 400 naming the field.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { deliver, eventsMessage } from "../consumer/helpers";
import { archiveOn, freezeClock } from "../aggregator/helpers";
import { ADMIN_TOKEN, advanceClock, createTenant, postJson, useFrozenClock, type TestTenant } from "../helpers";
import { createMeter, flush, queryMeter } from "../read/meter-helpers";

const NOW = Date.UTC(2100, 2, 10, 15);
useFrozenClock(() => freezeClock(NOW));
const MONTH = { from: Date.UTC(2100, 2, 1), to: Date.UTC(2100, 3, 1) };

const call = (id: string, at: number, tokens: number | string): QueuedEvent => ({
	id,
	event: "llm_call",
	timestamp: at,
	customerId: "acme",
	properties: { tokens },
});

async function archive(tenant: TestTenant, events: QueuedEvent[], message: string): Promise<void> {
	await deliver([eventsMessage(message, tenant.id, events)]);
	advanceClock(61_000);
	await runDurableObjectAlarm(env.AGGREGATOR.getByName(tenant.id));
}

function backfill(body: unknown): Promise<Response> {
	return postJson("/v1/admin/backfill", body, ADMIN_TOKEN);
}

async function total(tenant: TestTenant): Promise<string | null> {
	await flush(tenant);
	const answer = await queryMeter(tenant, "tokens", MONTH);
	return answer.data[0]?.valueDecimal ?? null;
}

describe("POST /v1/admin/backfill", () => {
	it("replays the archive through a new meter once, and never recounts what the meter counted live", async () => {
		const tenant = await createTenant();
		await archiveOn(tenant.id);
		// History on two days, one event without the value (skipped), archived before the meter exists.
		await archive(
			tenant,
			[
				call("h1", Date.UTC(2100, 2, 8, 9), 1.5),
				call("h2", Date.UTC(2100, 2, 9, 9), 2.25),
				call("h3", Date.UTC(2100, 2, 9, 10), "x"),
			],
			"m1",
		);
		advanceClock(1);
		await createMeter(tenant, { slug: "tokens", eventType: "llm_call", aggregation: "SUM", valueProperty: "tokens" });
		expect(await total(tenant)).toBeNull();
		// After the meter exists: counted live, archived too.
		advanceClock(1);
		await archive(tenant, [call("l1", Date.UTC(2100, 2, 10, 9), 10)], "m2");
		expect(await total(tenant)).toBe("10");

		const body = { tenant: tenant.id, meter: "tokens", from: "2100-03-01", to: "2100-03-31" };
		const first = await backfill(body);
		expect([first.status, await first.json()]).toEqual([
			200,
			{
				tenant: tenant.id,
				meter: "tokens",
				from: "2100-03-01",
				to: "2100-03-31",
				parts: 3,
				counted: 2,
				skipped: 1,
				alreadyDone: 0,
				nextCursor: null,
			},
		]);
		expect(await total(tenant)).toBe("13.75");
		const again = await backfill(body);
		expect(await again.json()).toEqual({
			tenant: tenant.id,
			meter: "tokens",
			from: "2100-03-01",
			to: "2100-03-31",
			parts: 3,
			counted: 0,
			skipped: 0,
			alreadyDone: 3,
			nextCursor: null,
		});
		expect(await total(tenant)).toBe("13.75");
	});

	it.each([
		[{ meter: "tokens", from: "2100-03-01", to: "2100-03-31" }, "tenant"],
		[{ tenant: "x", from: "2100-03-01", to: "2100-03-31" }, "meter"],
		[{ tenant: "x", meter: "tokens", from: "2100-03-32", to: "2100-03-31" }, "from"],
		[{ tenant: "x", meter: "tokens", from: "2100-03-02", to: "2100-03-01" }, "to"],
		[{ tenant: "x", meter: "tokens", from: "2100-03-01", to: "2100-03-31", extra: 1 }, "extra"],
	])("answers 400 for %j, naming %s", async (body, path) => {
		const response = await backfill(body);
		expect(response.status).toBe(400);
		expect(((await response.json()) as { error: { details: { path: string }[] } }).error.details[0]!.path).toBe(path);
	});

	it("answers 400 naming meter for a tenant without that meter, and 401 without the admin token", async () => {
		const tenant = await createTenant();
		const response = await backfill({ tenant: tenant.id, meter: "tokens", from: "2100-03-01", to: "2100-03-31" });
		expect([response.status, ((await response.json()) as { error: { details: { path: string }[] } }).error.details]).toEqual([
			400,
			[{ path: "meter", message: "no active meter tokens" }],
		]);
		expect((await postJson("/v1/admin/backfill", {}, tenant.readKey)).status).toBe(401);
	});
});
