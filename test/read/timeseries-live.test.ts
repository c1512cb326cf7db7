// GET /v1/query/timeseries over pending and flushed series: D1's rows and the aggregator's unflushed
// minutes merged exactly once at every interval, also while a flush is sealed and failing or
// committed but not yet cleared.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { crashAfterD1Commit, failD1 } from "../aggregator/helpers";
import { call, createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import { feed, flush, iso, MINUTE, queued } from "./query-helpers";
import { expectedSeries, timeseries, windowsOver, type Interval } from "./series-helpers";
import type { QueuedEvent } from "../../src/event/model";

const NOW = Date.UTC(2100, 2, 20, 15);
useFrozenClock(() => freezeClockAt(NOW));

const at = (day: number, hour: number, minute: number, ms = 0) => Date.UTC(2100, 2, day, hour, minute, 0, ms);

const first = () => [
	queued({ timestamp: at(20, 12, 5), userId: "u1", route: "/a", performance: { statusCode: 200 } }),
	queued({ timestamp: at(20, 12, 5, 10), userId: "u2", route: "/a", performance: { statusCode: 503 } }),
	queued({ timestamp: at(20, 13, 30), userId: "u1", route: "/b", performance: { statusCode: 500 } }),
	queued({ event: "page_view", timestamp: at(19, 9, 0), userId: "u3" }),
	// Older than the 7 days D1 keeps minutes for: its flush keeps only its hour and day.
	queued({ timestamp: at(12, 0, 0), userId: "u4", route: "/a" }),
];
/** The same minutes, users and routes again, and new ones. */
const second = () => [
	queued({ timestamp: at(20, 12, 5, 500), userId: "u1", route: "/a", performance: { statusCode: 200 } }),
	queued({ timestamp: at(20, 12, 5, 30_000), userId: "u6", route: "/a", performance: { statusCode: 500 } }),
	queued({ timestamp: at(20, 14, 59, 59_999), userId: "u2", route: "/c" }),
	queued({ timestamp: at(12, 0, 0, 30_000), userId: "u4", route: "/a" }),
	queued({ event: "page_view", timestamp: at(1, 0, 0), userId: "u7" }),
];
const third = () => [
	queued({ timestamp: at(20, 12, 6), userId: "u8", route: "/b", performance: { statusCode: 502 } }),
	queued({ event: "page_view", timestamp: at(19, 9, 0, 1), userId: "u3" }),
];

const RANGES: [Interval, number, number][] = [
	["minute", at(20, 12, 0), NOW],
	["hour", at(10, 0, 0), NOW],
	["day", at(1, 0, 0), NOW],
	["week", at(1, 0, 0), NOW],
	["month", at(1, 0, 0), NOW],
];

/** Every interval, metric and breakdown answers exactly `events`, each counted once. */
async function expectExactly(tenant: TestTenant, events: QueuedEvent[]): Promise<void> {
	for (const [interval, from, to] of RANGES) {
		const windows = windowsOver(from, to, interval);
		for (const metric of ["count", "errors", "error_rate", "unique_users"] as const) {
			for (const breakdown of [undefined, "route"] as const) {
				const by = breakdown === undefined ? "" : `&breakdown=${breakdown}`;
				const answer = await timeseries(tenant, `metric=${metric}&interval=${interval}&from=${iso(from)}&to=${iso(to)}${by}`);
				expect({ interval, metric, breakdown, series: answer.series }).toEqual({
					interval,
					metric,
					breakdown,
					series: expectedSeries(events, windows, metric, breakdown),
				});
			}
		}
		const pageViews = await timeseries(tenant, `metric=count&interval=${interval}&from=${iso(from)}&to=${iso(to)}&event=page_view`);
		expect(pageViews.series).toEqual(expectedSeries(events, windows, "count", undefined, "page_view"));
	}
}

describe("GET /v1/query/timeseries, pending and flushed", () => {
	it("merges D1's series with the pending minutes exactly once: ingest, flush, ingest more, flush", async () => {
		const tenant = await createTenant();
		await feed(tenant, first());
		await expectExactly(tenant, first());
		expect(await flush(tenant)).toBeGreaterThan(0);
		await expectExactly(tenant, first());

		await feed(tenant, second());
		await expectExactly(tenant, [...first(), ...second()]);
		expect(await flush(tenant)).toBeGreaterThan(0);
		await expectExactly(tenant, [...first(), ...second()]);

		await feed(tenant, third());
		await expectExactly(tenant, [...first(), ...second(), ...third()]);
	});

	it("counts a sealed batch once whether D1 refused it or committed it before the aggregator cleared it", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const flushVia = () => call("/v1/flush", { method: "POST", key: tenant.writeKey });
		await feed(tenant, first());

		// Sealed, and D1 refused it; then more events beside the sealed batch.
		await runInDurableObject(stub, (instance) => failD1(instance, 1));
		expect((await flushVia()).status).toBe(503);
		await expectExactly(tenant, first());
		await feed(tenant, second());
		await expectExactly(tenant, [...first(), ...second()]);

		// D1 committed the sealed batch, and the aggregator crashed before clearing it.
		await runInDurableObject(stub, (instance) => crashAfterD1Commit(instance, 1));
		expect((await flushVia()).status).toBe(503);
		await expectExactly(tenant, [...first(), ...second()]);

		expect((await flushVia()).status).toBe(200);
		await expectExactly(tenant, [...first(), ...second()]);
		expect((await stub.metrics()).oldestUnflushedMs).toBeNull();
	});

	it("takes events of one minute from several ingests and flushes into the one minute", async () => {
		const tenant = await createTenant();
		const minute = at(20, 14, 0);
		const events = Array.from({ length: 30 }, (_, i) =>
			queued({ timestamp: minute + i * 1000, userId: `u${i % 7}`, performance: { statusCode: i % 3 === 0 ? 500 : 200 } }),
		);
		for (let i = 0; i < 3; i++) {
			await feed(tenant, events.slice(i * 10, i * 10 + 10));
			if (i < 2) await flush(tenant);
		}
		for (const [metric, value] of [
			["count", 30],
			["errors", 10],
			["error_rate", 1 / 3],
			["unique_users", 7],
		] as const) {
			const answer = await timeseries(tenant, `metric=${metric}&interval=minute&from=${iso(minute)}&to=${iso(minute + MINUTE)}`);
			expect(answer.series).toEqual([{ key: {}, points: [{ start: iso(minute), end: iso(minute + MINUTE), value }] }]);
		}
	});
});
