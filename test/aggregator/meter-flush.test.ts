// Meter rows through the flush ledger's failures: D1 down for a flush of meter rows, then back, and
// a crash after D1 committed but before the local clear. Every reading lands in D1 exactly once,
// rows that meet in D1 merge (read, merge, replace), and answers stay exact throughout.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, createTenant, useFrozenClock, type TestTenant } from "../helpers";
import { createMeter, ingestDirect, MINUTE, queryMeter, type WireEvent } from "../read/meter-helpers";
import { crashAfterD1Commit, d1Rows, failD1, freezeClock } from "./helpers";

useFrozenClock(freezeClock);

const M = Date.parse("2100-03-10T13:40:00Z");
let next = 0;
const llmCall = (model: string, tokens: number, user: string, at = M, id = `f-${next++}`): WireEvent => ({
	id,
	event: "llm_call",
	timestamp: at,
	customerId: "acme",
	properties: { model, tokens, user },
});

async function meteredTenant(): Promise<TestTenant> {
	const tenant = await createTenant();
	await createMeter(tenant, {
		slug: "tokens",
		eventType: "llm_call",
		aggregation: "SUM",
		valueProperty: "tokens",
		groupBy: { model: "model" },
	});
	await createMeter(tenant, { slug: "users", eventType: "llm_call", aggregation: "UNIQUE_COUNT", valueProperty: "user" });
	await createMeter(tenant, { slug: "last", eventType: "llm_call", aggregation: "LATEST", valueProperty: "tokens" });
	return tenant;
}

/** D1's meter rows of a tenant, as stored (the exact sum joined from its two parts). */
function storedRows(tenant: TestTenant) {
	return d1Rows(
		`SELECT meter, customer, groups, minute, count, CAST(value_hi * 1000000000000 + value_lo AS TEXT) AS value, min, max, latest_at, latest, distinct_values
		 FROM meter_rollups WHERE tenant = ?1 ORDER BY meter, groups, minute`,
		tenant.id,
	);
}

const row = (meter: number, groups: string, minute: number, measures: Record<string, unknown>) => ({
	meter,
	customer: "acme",
	groups,
	minute: new Date(minute).toISOString(),
	count: 0,
	value: "0",
	min: null,
	max: null,
	latest_at: null,
	latest: null,
	distinct_values: null,
	...measures,
});

/** The answers over the hour, grouped by model (tokens) and whole (users, last). */
async function answers(tenant: TestTenant) {
	const range = { from: Date.parse("2100-03-10T13:00:00Z"), to: Date.parse("2100-03-10T14:00:00Z") };
	const pick = (data: { valueDecimal: string | null; groupBy: Record<string, string | null> }[]) =>
		data.map((point) => [point.groupBy.model ?? null, point.valueDecimal]);
	return {
		tokens: pick((await queryMeter(tenant, "tokens", { ...range, groupBy: ["model"] })).data),
		users: pick((await queryMeter(tenant, "users", range)).data),
		last: pick((await queryMeter(tenant, "last", range)).data),
	};
}

const flushStatus = async (tenant: TestTenant) => (await call("/v1/flush", { method: "POST", key: tenant.writeKey })).status;

describe("meter rows and D1 failures", () => {
	it("keeps meter rows through a failed flush, answers exactly meanwhile, and writes each reading once when D1 is back", async () => {
		const tenant = await meteredTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const first = llmCall("gpt", 1.5, "u1", M, "a1");
		expect(await ingestDirect(tenant, [first, llmCall("gpt", 2.25, "u2", M + 1), llmCall("llama", 4, "u1", M + 2)])).toBe(3);
		const d1 = await runInDurableObject(stub, (instance) => failD1(instance, 1));

		expect(await flushStatus(tenant)).toBe(503);
		expect(await storedRows(tenant)).toEqual([]);
		expect(await answers(tenant)).toEqual({
			tokens: [
				["gpt", "3.75"],
				["llama", "4"],
			],
			users: [[null, "2"]],
			last: [[null, "4"]],
		});

		// During the outage: a resent event (counted once), more readings for the same rows, one a minute later.
		expect(await ingestDirect(tenant, [first, llmCall("gpt", 0.25, "u3", M + 3), llmCall("llama", -1, "u1", M + MINUTE)])).toBe(2);
		const expected = {
			tokens: [
				["gpt", "4"],
				["llama", "3"],
			],
			users: [[null, "3"]],
			last: [[null, "-1"]],
		};
		expect(await answers(tenant)).toEqual(expected);

		// D1 is back: the sealed batch, then the open one whose rows meet it in D1.
		expect(await flushStatus(tenant)).toBe(200);
		expect(d1.calls).toBe(3);
		expect(await storedRows(tenant)).toEqual([
			row(1, '["gpt"]', M, { count: 3, value: "4000000", min: 250000, max: 2250000, latest_at: M + 3, latest: 250000 }),
			row(1, '["llama"]', M, { count: 1, value: "4000000", min: 4000000, max: 4000000, latest_at: M + 2, latest: 4000000 }),
			row(1, '["llama"]', M + MINUTE, {
				count: 1,
				value: "-1000000",
				min: -1000000,
				max: -1000000,
				latest_at: M + MINUTE,
				latest: -1000000,
			}),
			row(2, "[]", M, { count: 4, distinct_values: '{"v":["u1","u2","u3"]}' }),
			row(2, "[]", M + MINUTE, { count: 1, distinct_values: '{"v":["u1"]}' }),
			row(3, "[]", M, { count: 4, value: "8000000", min: 250000, max: 4000000, latest_at: M + 3, latest: 250000 }),
			row(3, "[]", M + MINUTE, {
				count: 1,
				value: "-1000000",
				min: -1000000,
				max: -1000000,
				latest_at: M + MINUTE,
				latest: -1000000,
			}),
		]);
		expect(await answers(tenant)).toEqual(expected);
		expect(await flushStatus(tenant)).toBe(200);
		expect(d1.calls).toBe(3);
		expect(await answers(tenant)).toEqual(expected);
	});

	it("counts a flush once when the aggregator crashed after D1 committed it and before clearing it", async () => {
		const tenant = await meteredTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		expect(await ingestDirect(tenant, [llmCall("gpt", 1, "u1", M), llmCall("gpt", 2, "u2", M + 1)])).toBe(2);
		const d1 = await runInDurableObject(stub, (instance) => crashAfterD1Commit(instance, 1));

		expect(await flushStatus(tenant)).toBe(503);
		expect(d1.applied).toEqual([true]);
		// D1 has the batch, the aggregator still holds it sealed: the answers count it once.
		const once = { tokens: [["gpt", "3"]], users: [[null, "2"]], last: [[null, "2"]] };
		expect(await answers(tenant)).toEqual(once);

		// A later reading for the same rows, then the retry: the ledger refuses the resent batch, the new one merges.
		expect(await ingestDirect(tenant, [llmCall("gpt", 0.5, "u1", M + 2)])).toBe(1);
		expect(await flushStatus(tenant)).toBe(200);
		expect(d1.applied).toEqual([true, false, true]);
		expect(await storedRows(tenant)).toEqual([
			row(1, '["gpt"]', M, { count: 3, value: "3500000", min: 500000, max: 2000000, latest_at: M + 2, latest: 500000 }),
			row(2, "[]", M, { count: 3, distinct_values: '{"v":["u1","u2"]}' }),
			row(3, "[]", M, { count: 3, value: "3500000", min: 500000, max: 2000000, latest_at: M + 2, latest: 500000 }),
		]);
		expect(await answers(tenant)).toEqual({ tokens: [["gpt", "3.5"]], users: [[null, "2"]], last: [[null, "0.5"]] });
	});
});
