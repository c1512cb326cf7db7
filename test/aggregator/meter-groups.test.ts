// The group cardinality cap (MAX_METER_GROUPS, 10,000 by default; tests run with the default):
// a meter's 10,001st distinct group tuple in a UTC hour and every later new one are recorded as
// all-"(other)" and counted in meterGroupsFolded; known tuples still count as themselves; the
// next hour starts afresh; other meters are untouched; the hour's tuples are remembered from
// SQLite once memory is lost; and an answer of more than 10,000 values is refused.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import { MeterGroups } from "../../src/aggregator/meter-groups";
import type { Store } from "../../src/aggregator/state";
import { call, createTenant, useFrozenClock } from "../helpers";
import { createMeter, flush, HOUR, ingestDirect, iso, metricsOf, queryMeter, queryPath, type WireEvent } from "../read/meter-helpers";
import { freezeClock } from "./helpers";

useFrozenClock(freezeClock);

const H = Date.parse("2100-03-10T13:00:00Z");
const CAP = Number(env.MAX_METER_GROUPS);
let next = 0;
const request = (rid: string, timestamp: number): WireEvent => ({
	id: `g-${next++}`,
	event: "req",
	timestamp,
	properties: { rid, kind: "k" },
});
const point = (from: number, to: number, value: number, groupBy: Record<string, string> = {}) => ({
	windowStart: iso(from),
	windowEnd: iso(to),
	value,
	valueDecimal: String(value),
	customerId: null,
	groupBy,
});

describe("the group cap", () => {
	it(
		"folds the hour's tuples past the cap into (other), counts them, and keeps known tuples, the next hour and other meters",
		{ timeout: 120_000 },
		async () => {
			expect(CAP).toBe(10_000);
			const tenant = await createTenant();
			await createMeter(tenant, {
				slug: "requests",
				eventType: "req",
				aggregation: "COUNT",
				groupBy: { request: "rid", kind: "kind" },
			});
			await createMeter(tenant, { slug: "by_kind", eventType: "req", aggregation: "COUNT", groupBy: { kind: "kind" } });
			await createMeter(tenant, { slug: "all_requests", eventType: "req", aggregation: "COUNT" });

			// 10,001 distinct tuples in hour H, in order: the last one is past the cap.
			const first = Array.from({ length: CAP + 1 }, (_, i) => request(`r${i}`, H + (i % 60) * 60_000));
			expect(await ingestDirect(tenant, first, CAP + 1)).toBe(CAP + 1);
			expect((await metricsOf(tenant)).meterGroupsFolded).toBe(1);
			// A known tuple still counts as itself; a new one in H is folded; a new one in H+1 is admitted.
			expect(await ingestDirect(tenant, [request("r5", H + 1), request("late", H + 2), request("next", H + HOUR)])).toBe(3);
			expect((await metricsOf(tenant)).meterGroupsFolded).toBe(2);

			// Memory lost (as after a restart, or once the hour left memory): the hour's tuples come back from SQLite.
			await runInDurableObject(env.AGGREGATOR.getByName(tenant.id), (instance: TenantAggregator) => {
				const inner = instance as unknown as { store: Store; meterGroups: MeterGroups };
				inner.meterGroups = new MeterGroups(inner.store, CAP);
			});
			expect(await ingestDirect(tenant, [request("after_restart", H + 3), request("r6", H + 4)])).toBe(2);
			expect((await metricsOf(tenant)).meterGroupsFolded).toBe(3);

			const range = { from: H, to: H + 2 * HOUR };
			const other = { request: "(other)", kind: "(other)" };
			const expectAnswers = async () => {
				expect(
					(await queryMeter(tenant, "requests", { ...range, groupBy: ["request", "kind"], filter: { request: "(other)" } })).data,
				).toEqual([point(H, H + 2 * HOUR, 3, other)]);
				expect((await queryMeter(tenant, "requests", { ...range, groupBy: ["request"], filter: { request: "r5" } })).data).toEqual([
					point(H, H + 2 * HOUR, 2, { request: "r5" }),
				]);
				expect(
					(
						await queryMeter(tenant, "requests", {
							...range,
							windowSize: "HOUR",
							groupBy: ["request"],
							filter: { request: "next" },
						})
					).data,
				).toEqual([point(H + HOUR, H + 2 * HOUR, 1, { request: "next" })]);
				// Folded readings still count; the other meters never fold.
				for (const slug of ["requests", "all_requests"]) {
					expect((await queryMeter(tenant, slug, { ...range, windowSize: "HOUR" })).data).toEqual([
						point(H, H + HOUR, CAP + 5),
						point(H + HOUR, H + 2 * HOUR, 1),
					]);
				}
				expect((await queryMeter(tenant, "by_kind", { ...range, groupBy: ["kind"] })).data).toEqual([
					point(H, H + 2 * HOUR, CAP + 6, { kind: "k" }),
				]);
				// 10,002 tuples in the range (H's 10,000 and "(other)", H+1's one): an answer of that many values is refused.
				const refused = await call(queryPath("requests", { ...range, groupBy: ["request"] }), { key: tenant.readKey });
				expect(refused.status).toBe(400);
				expect(await refused.json()).toEqual({
					error: {
						code: "invalid_request",
						message: "groupBy: the answer would hold more than 10000 values; narrow the range or group by less",
						details: [
							{ path: "groupBy", message: "the answer would hold more than 10000 values; narrow the range or group by less" },
						],
					},
				});
			};
			await expectAnswers();
			expect(await flush(tenant)).toBeGreaterThan(0);
			await expectAnswers();
			expect(await metricsOf(tenant)).toMatchObject({ aggregated: CAP + 6, meterGroupsFolded: 3, meterSkipped: 0 });
		},
	);

	it("answers exactly 10,000 values, one per tuple the cap admitted", { timeout: 120_000 }, async () => {
		const tenant = await createTenant();
		await createMeter(tenant, { slug: "requests", eventType: "req", aggregation: "COUNT", groupBy: { request: "rid" } });
		const events = Array.from({ length: CAP }, (_, i) => request(`r${String(i).padStart(5, "0")}`, H + (i % 60) * 60_000));
		expect(await ingestDirect(tenant, events, CAP)).toBe(CAP);
		const answer = await queryMeter(tenant, "requests", { from: H, to: H + HOUR, groupBy: ["request"] });
		expect(answer.data).toHaveLength(CAP);
		expect(answer.data[0]).toEqual(point(H, H + HOUR, 1, { request: "r00000" }));
		expect(answer.data[CAP - 1]).toEqual(point(H, H + HOUR, 1, { request: "r09999" }));
		expect((await metricsOf(tenant)).meterGroupsFolded).toBe(0);
	});
});
