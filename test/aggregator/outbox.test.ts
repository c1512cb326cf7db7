// The Analytics Engine outbox is bounded: past MAX_OUTBOX_POINTS the oldest points go, and are counted.
import { runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import { appendPoints, MAX_OUTBOX_POINTS, outboxPoints } from "../../src/aggregator/outbox";
import type { Store } from "../../src/aggregator/state";
import type { DataPoint } from "../../src/sinks/analytics";
import { useFrozenClock } from "../helpers";
import { aggregatorWith, freezeClock, makeEvent } from "./helpers";

useFrozenClock(freezeClock);

const points = (count: number, label: string): DataPoint[] =>
	Array.from({ length: count }, (_, i) => ({ indexes: ["t"], blobs: [label, String(i)], doubles: [1] }));

it("drops the oldest points once the outbox would pass its bound, and counts them", async () => {
	const { stub } = await aggregatorWith([makeEvent()]);

	const kept = await runInDurableObject(stub, (instance: TenantAggregator, state) => {
		const store = (instance as unknown as { store: Store }).store;
		store.transact(() => appendPoints(store, points(MAX_OUTBOX_POINTS, "old")));
		expect(outboxPoints(store)).toBe(25_000);
		// 300 more points are two rows (250 + 50); whole rows of the oldest go until 25,000 fit.
		store.transact(() => appendPoints(store, points(300, "new")));
		return state.storage.sql
			.exec<{ points: string }>("SELECT points FROM outbox ORDER BY id")
			.toArray()
			.flatMap((row) => JSON.parse(row.points) as DataPoint[]);
	});

	expect(kept).toHaveLength(24_800);
	expect(kept[0]!.blobs).toEqual(["old", "500"]);
	expect(kept.at(-1)!.blobs).toEqual(["new", "299"]);
	expect((await stub.metrics()).counters.analytics_dropped).toBe(500);
	expect((await stub.metrics()).outboxPoints).toBe(24_800);
});
