// Analytics Engine: one point per flushed rollup row, ≤ 250 per invocation, written once, never in D1's way.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import { RETRY_POLICIES } from "../../src/aggregator/state";
import { POINT_COLUMNS, type DataPoint } from "../../src/sinks/analytics";
import { advanceClock, uniqueTenantId, useFrozenClock } from "../helpers";
import {
	aggregator,
	aggregatorWith,
	COMPACT_AT,
	countOnly,
	crashAfterD1Commit,
	d1Events,
	d1Flushes,
	d1Usage,
	EVENT_HOUR,
	EVENT_MINUTE,
	freezeClock,
	FROZEN_AT,
	internals,
	makeEvent,
	outbox,
	pendingRowCount,
	settle,
} from "./helpers";

const OUTBOX_BACKOFF = RETRY_POLICIES.outbox;

useFrozenClock(freezeClock);

/** Observes what reaches the real Analytics Engine binding (a no-op locally). */
function spyOnAnalytics(instance: TenantAggregator) {
	return vi.spyOn(internals(instance).env.ANALYTICS, "writeDataPoint");
}

function pointsOf(spy: ReturnType<typeof spyOnAnalytics>): DataPoint[] {
	return spy.mock.calls.map(([point]) => point as DataPoint);
}

/** The points the binding is given while `run` drives the live aggregator. */
function pointsWrittenDuring(
	stub: ReturnType<typeof aggregator>,
	run: (instance: TenantAggregator) => Promise<unknown>,
): Promise<DataPoint[]> {
	return runInDurableObject(stub, async (instance: TenantAggregator) => {
		const spy = spyOnAnalytics(instance);
		await run(instance);
		return pointsOf(spy);
	});
}

/** Sorted by blobs: the order of rows within one rollup is not part of the contract. */
function byBlobs(points: DataPoint[]): DataPoint[] {
	return [...points].sort((a, b) => JSON.stringify(a.blobs).localeCompare(JSON.stringify(b.blobs)));
}

/** A data point built from logical fields through POINT_COLUMNS: blobs default to "", doubles to 0. */
function pointFromColumns(tenant: string, fields: Partial<Record<keyof typeof POINT_COLUMNS, string | number>>): DataPoint {
	const blobs: string[] = [];
	const doubles: number[] = [];
	for (const [field, column] of Object.entries(POINT_COLUMNS) as [keyof typeof POINT_COLUMNS, string][]) {
		const [, kind, position] = /^(blob|double)(\d+)$/.exec(column)!;
		if (kind === "blob") blobs[Number(position) - 1] = String(fields[field] ?? "");
		else doubles[Number(position) - 1] = Number(fields[field] ?? 0);
	}
	return { indexes: [tenant], blobs, doubles };
}

/** One usage row (2 events, 2.5 units), and two event rows: one with errors and durations, one bare. */
function slice() {
	return [
		makeEvent({ usage: { sku: "tokens", unit: "token", micros: 1_500_000 }, performance: { duration: 10, statusCode: 503 } }),
		makeEvent({ usage: { sku: "tokens", unit: "token", micros: 1_000_000 }, performance: { duration: 20.5 } }),
		makeEvent({ performance: { statusCode: 200 } }),
		makeEvent({ event: "page_view" }),
	];
}

/**
 * The rows a flush of the slice writes: the usage row and the two event rows, which get a point
 * each, and 30 series rows, which get none: 10 per grain (minute, hour, day), api_call's 6 (its
 * total, route "", status 503, "" and 200, country "") and page_view's 4.
 */
const SLICE_ROWS = 3 + 30;

/** The slice's one usage row in D1. */
const sliceUsage = [{ sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "2500000", events: 2 }];

function slicePoints(tenant: string): DataPoint[] {
	return byBlobs([
		{ indexes: [tenant], blobs: ["event", "api_call", "", EVENT_MINUTE, "", ""], doubles: [3, 0, 1, 2, 30.5, 10, 20.5] },
		{ indexes: [tenant], blobs: ["event", "page_view", "", EVENT_MINUTE, "", ""], doubles: [1, 0, 0, 0, 0, 0, 0] },
		{ indexes: [tenant], blobs: ["usage", "tokens", "token", EVENT_HOUR, "", ""], doubles: [2, 2.5, 0, 0, 0, 0, 0] },
	]);
}

describe("data points", () => {
	it("writes one point per flushed row with the tenant as the only index", async () => {
		const { tenant, stub } = await aggregatorWith(slice());

		const points = await pointsWrittenDuring(stub, async (instance) => expect(await instance.flush()).toBe(SLICE_ROWS));

		expect(byBlobs(points)).toEqual(slicePoints(tenant));
	});

	it("puts every field in the column POINT_COLUMNS names", async () => {
		const { tenant, stub } = await aggregatorWith(slice());

		const points = await pointsWrittenDuring(stub, (instance) => instance.flush());

		expect(byBlobs(points)).toEqual(
			byBlobs([
				pointFromColumns(tenant, {
					kind: "event",
					name: "api_call",
					period: EVENT_MINUTE,
					count: 3,
					errors: 1,
					durationCount: 2,
					durationSum: 30.5,
					durationMin: 10,
					durationMax: 20.5,
				}),
				pointFromColumns(tenant, { kind: "event", name: "page_view", period: EVENT_MINUTE, count: 1 }),
				pointFromColumns(tenant, { kind: "usage", name: "tokens", unit: "token", period: EVENT_HOUR, count: 2, quantity: 2.5 }),
			]),
		);
	});
});

describe("the per-invocation limit", () => {
	it("writes 250 points per invocation and the rest on the following alarms, each exactly once", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const names = Array.from({ length: 600 }, (_, i) => `event-${String(i).padStart(3, "0")}`);
		await stub.ingest(
			tenant,
			names.map((event) => makeEvent({ event })),
		);

		const spy = await runInDurableObject(stub, async (instance, state) => {
			const spy = spyOnAnalytics(instance);
			// 600 event rows + 7200 series rows (each name's 4 dimensions × minute, hour, day); 600 points.
			expect(await instance.flush()).toBe(7800);
			expect(spy).toHaveBeenCalledTimes(250);
			expect(outbox(state)).toHaveLength(350);
			// The rest is due at once.
			expect(await state.storage.getAlarm()).toBe(FROZEN_AT);
			return spy;
		});

		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(spy).toHaveBeenCalledTimes(500);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(spy).toHaveBeenCalledTimes(600);

		expect(
			pointsOf(spy)
				.map((point) => point.blobs[1])
				.sort(),
		).toEqual(names);
		await runInDurableObject(stub, async (_instance, state) => {
			expect(outbox(state)).toEqual([]);
			expect(await state.storage.getAlarm()).toBe(COMPACT_AT);
		});
		expect(await d1Events(tenant)).toEqual(names.map((event) => countOnly(event, EVENT_MINUTE, 1)));
	});
});

describe("failures and races", () => {
	it("never lets an Analytics Engine failure block or undo the D1 flush", async () => {
		const { tenant, stub } = await aggregatorWith(slice());

		await runInDurableObject(stub, async (instance, state) => {
			const sinks = internals(instance).sinks;
			const real = sinks.analytics;
			sinks.analytics = () => {
				throw new Error("Analytics Engine unavailable");
			};
			expect(await instance.flush()).toBe(SLICE_ROWS);
			expect(pendingRowCount(state)).toBe(0);
			expect(byBlobs(outbox(state))).toEqual(slicePoints(tenant));
			// Retried after a backoff, not in a spin.
			expect(await state.storage.getAlarm()).toBe(FROZEN_AT + OUTBOX_BACKOFF.baseMs);
			sinks.analytics = real;
		});
		expect(await d1Usage(tenant)).toEqual(sliceUsage);
		expect(await d1Events(tenant)).toEqual([
			{
				event: "api_call",
				minute: EVENT_MINUTE,
				count: 3,
				errors: 1,
				duration_count: 2,
				duration_sum: 30.5,
				duration_min: 10,
				duration_max: 20.5,
			},
			countOnly("page_view", EVENT_MINUTE, 1),
		]);

		// Once Analytics Engine is back, the next alarm writes the kept points, and D1 stays as it was.
		const spy = await runInDurableObject(stub, (instance) => spyOnAnalytics(instance));
		advanceClock(OUTBOX_BACKOFF.baseMs);
		expect(await runDurableObjectAlarm(stub)).toBe(true);

		expect(byBlobs(pointsOf(spy))).toEqual(slicePoints(tenant));
		await runInDurableObject(stub, (_instance, state) => expect(outbox(state)).toEqual([]));
		expect(await d1Usage(tenant)).toEqual(sliceUsage);
		expect(await d1Flushes(tenant)).toHaveLength(1);
	});

	it("writes D1 and each point once when flush() races the alarm", async () => {
		const { tenant, stub } = await aggregatorWith(slice());

		const points = await pointsWrittenDuring(stub, (instance) => Promise.all([instance.flush(), instance.alarm(), instance.flush()]));

		expect(byBlobs(points)).toEqual(slicePoints(tenant));
		expect(await d1Usage(tenant)).toEqual(sliceUsage);
		expect(await d1Flushes(tenant)).toHaveLength(1);
	});

	it("writes a batch's points once when it is retried after a crash that followed D1's commit", async () => {
		const { tenant, stub } = await aggregatorWith(slice());
		const spy = await runInDurableObject(stub, (instance) => {
			crashAfterD1Commit(instance, 1);
			return spyOnAnalytics(instance);
		});

		await expect(settle(stub.flush())).rejects.toThrow("crashed after D1 commit");
		expect(spy).not.toHaveBeenCalled();
		await stub.flush();

		expect(byBlobs(pointsOf(spy))).toEqual(slicePoints(tenant));
		await runInDurableObject(stub, (_instance, state) => expect(outbox(state)).toEqual([]));
	});
});
