// GET /v1/query/timeseries accuracy: duration p50/p95/p99 within 1% of the exact quantile (the
// sorted value at rank ⌊q·(n − 1)⌋) of 24,000 durations from two distributions, merged across
// minutes, hours and the flush; unique users exact up to 128 and within 3% at 100,000 distinct;
// DAU, WAU and MAU from the same rollups.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import { DAY, exactQuantile, feed, flush, HOUR, iso, MINUTE, prng, queued, relativeError } from "./query-helpers";
import { timeseries, windowsOver, type Interval } from "./series-helpers";

const NOW = Date.UTC(2100, 2, 20, 15);
useFrozenClock(() => freezeClockAt(NOW));

const START = NOW - 3 * HOUR;
const QUANTILES = { duration_p50: 0.5, duration_p95: 0.95, duration_p99: 0.99 } as const;

/** Log-normal durations around 50 ms, and a bimodal mix of fast calls and a long exponential tail. */
function durations(kind: "lognormal" | "bimodal", n: number, random: () => number): number[] {
	return Array.from({ length: n }, () => {
		if (kind === "lognormal") {
			const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
			return Math.min(86_400_000, 50 * Math.exp(z));
		}
		return random() < 0.8 ? 5 + 15 * random() : 1000 - 4000 * Math.log(1 - random());
	});
}

/** Each check's estimate against the exact quantile of the events it covers. */
async function expectQuantiles(
	tenant: TestTenant,
	events: QueuedEvent[],
	interval: Interval,
	from: number,
	to: number,
	event?: string,
): Promise<number> {
	const windows = windowsOver(from, to, interval);
	let checked = 0;
	for (const [metric, q] of Object.entries(QUANTILES)) {
		const filter = event === undefined ? "" : `&event=${event}`;
		const answer = await timeseries(tenant, `metric=${metric}&interval=${interval}&from=${iso(from)}&to=${iso(to)}${filter}`);
		expect(answer.series.map((s) => s.key)).toEqual([{}]);
		answer.series[0]!.points.forEach((point, i) => {
			const end = windows.starts[i + 1] ?? windows.end;
			const values = events
				.filter((e) => e.timestamp >= windows.starts[i]! && e.timestamp < end && (event === undefined || e.event === event))
				.map((e) => e.performance!.duration!);
			if (values.length === 0) return expect(point.value).toBeNull();
			const exact = exactQuantile(values, q);
			expect(
				relativeError(point.value, exact),
				`${metric} of ${event ?? "all"} in ${point.start}: ${point.value} vs ${exact}`,
			).toBeLessThanOrEqual(0.01);
			checked++;
		});
	}
	return checked;
}

describe("duration percentiles", () => {
	it("are within 1% of the exact p50, p95 and p99 per minute, hour and day, pending and flushed", async () => {
		const tenant = await createTenant();
		const random = prng(20_260_320);
		const at = () => START + Math.floor(random() * 3 * HOUR);
		const events = [
			...durations("lognormal", 12_000, random).map((duration) =>
				queued({ event: "api_call", timestamp: at(), performance: { duration } }),
			),
			...durations("bimodal", 12_000, random).map((duration) =>
				queued({ event: "job_run", timestamp: at(), performance: { duration } }),
			),
		];
		const half = events.filter((_, i) => i % 2 === 0);
		const rest = events.filter((_, i) => i % 2 === 1);
		await feed(tenant, half);
		expect(await flush(tenant)).toBeGreaterThan(0);
		await feed(tenant, rest);

		const check = async () => {
			let checked = 0;
			for (const event of ["api_call", "job_run", undefined]) {
				checked += await expectQuantiles(tenant, events, "day", START, NOW, event);
				checked += await expectQuantiles(tenant, events, "hour", START, NOW, event);
			}
			checked += await expectQuantiles(tenant, events, "minute", START, START + 10 * MINUTE, "api_call");
			checked += await expectQuantiles(tenant, events, "minute", NOW - 5 * MINUTE, NOW, "job_run");
			// Per day and hour of 3 event filters, 10 and 5 minutes: 3 quantiles each.
			expect(checked).toBe(3 * (3 * (1 + 3) + 10 + 5));
		};
		await check();
		expect(await flush(tenant)).toBeGreaterThan(0);
		await check();
	});

	it("merge the two distributions per event in a breakdown", async () => {
		const tenant = await createTenant();
		const random = prng(7);
		const events = [
			...durations("bimodal", 3000, random).map((duration, i) =>
				queued({ event: "a", timestamp: START + (i % 120) * MINUTE, performance: { duration } }),
			),
			...durations("lognormal", 3000, random).map((duration, i) =>
				queued({ event: "b", timestamp: START + (i % 120) * MINUTE, performance: { duration } }),
			),
		];
		await feed(tenant, events.slice(0, 4000));
		await flush(tenant);
		await feed(tenant, events.slice(4000));
		const answer = await timeseries(tenant, `metric=duration_p95&interval=hour&from=${iso(START)}&to=${iso(NOW)}&breakdown=event`);
		expect(answer.series.map((s) => s.key)).toEqual([{ event: "a" }, { event: "b" }]);
		for (const series of answer.series) {
			series.points.forEach((point, i) => {
				const values = events
					.filter((e) => e.event === series.key.event && e.timestamp >= START + i * HOUR && e.timestamp < START + (i + 1) * HOUR)
					.map((e) => e.performance!.duration!);
				// Two hours hold events; the third is empty.
				if (i === 2) expect(point.value).toBeNull();
				else expect(relativeError(point.value, exactQuantile(values, 0.95))).toBeLessThanOrEqual(0.01);
			});
		}
	});
});

/** An estimate of `exact` distinct users: equal while at most 128 (the sketch keeps them exactly), else within 3%. */
function expectUsers(estimate: number | null, exact: number, where: string): void {
	if (exact <= 128) expect(estimate, where).toBe(exact);
	else expect(relativeError(estimate, exact), `${where}: ${estimate} vs ${exact}`).toBeLessThanOrEqual(0.03);
}

/** Every window's unique users against the exact distinct users of the events in it. */
async function expectWindows(
	tenant: TestTenant,
	events: QueuedEvent[],
	interval: Interval,
	from: number,
	to: number,
	event?: string,
): Promise<number[]> {
	const windows = windowsOver(from, to, interval);
	const filter = event === undefined ? "" : `&event=${event}`;
	const answer = await timeseries(tenant, `metric=unique_users&interval=${interval}&from=${iso(from)}&to=${iso(to)}${filter}`);
	expect(answer.series.map((s) => s.points.map((p) => p.start))).toEqual([windows.starts.map(iso)]);
	return answer.series[0]!.points.map((point, i) => {
		const end = windows.starts[i + 1] ?? windows.end;
		const covered = events.filter(
			(e) => e.timestamp >= windows.starts[i]! && e.timestamp < end && (event === undefined || e.event === event),
		);
		const exact = new Set(covered.map((e) => e.userId)).size;
		expectUsers(point.value, exact, `${interval} ${point.start}`);
		return exact;
	});
}

describe("unique users", () => {
	it("are exact below 128: 99 users with repeats, and 128 exactly", async () => {
		const tenant = await createTenant();
		const events = Array.from({ length: 600 }, (_, i) =>
			queued({ timestamp: START + (i % 180) * MINUTE, userId: `u-${(i * 37) % 99}` }),
		);
		const signups = Array.from({ length: 256 }, (_, i) =>
			queued({ event: "signup", timestamp: START + i * MINUTE * 0.5, userId: `s-${i % 128}` }),
		);
		await feed(tenant, [...events.slice(0, 300), ...signups.slice(0, 100)]);
		await flush(tenant);
		await feed(tenant, [...events.slice(300), ...signups.slice(100)]);
		const day = await timeseries(tenant, `metric=unique_users&interval=day&from=${iso(START)}&to=${iso(NOW)}&breakdown=event`);
		expect(day.series.map((s) => [s.key, s.points.map((p) => p.value)])).toEqual([
			[{ event: "api_call" }, [99]],
			[{ event: "signup" }, [128]],
		]);
		expect(await expectWindows(tenant, events, "minute", START, START + 30 * MINUTE, "api_call")).toHaveLength(30);
		expect(await expectWindows(tenant, events, "hour", START, NOW, "api_call")).toEqual([99, 96, 96]);
		expect(await expectWindows(tenant, signups, "hour", START, NOW, "signup")).toEqual([120, 120, 16]);
	});

	it("are within 3% of 100,000 distinct users, per day and per hour, pending and flushed", async () => {
		const tenant = await createTenant();
		const random = prng(100_000);
		// 100,000 users once each, and 20,000 more visits by some of them, over three hours.
		const visit = (user: number) => queued({ timestamp: START + Math.floor(random() * 3 * HOUR), userId: `user-${user}` });
		const events = [
			...Array.from({ length: 100_000 }, (_, i) => visit(i)),
			...Array.from({ length: 20_000 }, () => visit(Math.floor(random() * 100_000))),
		];
		await feed(tenant, events.slice(0, 60_000));
		await flush(tenant);
		await feed(tenant, events.slice(60_000));
		const check = async () => {
			expect(await expectWindows(tenant, events, "day", START, NOW)).toEqual([100_000]);
			const hourly = await expectWindows(tenant, events, "hour", START, NOW);
			expect(hourly.every((exact) => exact > 30_000)).toBe(true);
		};
		await check();
		await flush(tenant);
		await check();
	});

	it.each([
		["exact for 60 users", 60, 0],
		["within 3% for 15,000 users", 15_000, 1],
	])("give DAU, WAU and MAU from the same rollups, %s", async (_, users, seed) => {
		const tenant = await createTenant();
		const random = prng(seed);
		// Each user active on one to four days from 8 February (a Monday) to 19 March, one to three times a day.
		const first = Date.UTC(2100, 1, 8);
		const days = (NOW - first) / DAY;
		const events: QueuedEvent[] = [];
		for (let user = 0; user < users; user++) {
			for (let d = 0, active = 1 + Math.floor(random() * 4); d < active; d++) {
				const day = first + Math.floor(random() * Math.floor(days)) * DAY;
				for (let v = 0, visits = 1 + Math.floor(random() * 3); v < visits; v++) {
					// In one of the first four minutes of an hour: fewer, fuller rollup rows.
					const minute = Math.floor(random() * 24) * HOUR + Math.floor(random() * 4) * MINUTE + Math.floor(random() * MINUTE);
					events.push(queued({ timestamp: day + minute, userId: `member-${user}` }));
				}
			}
		}
		await feed(tenant, events.slice(0, Math.floor(events.length / 2)));
		await flush(tenant);
		await feed(tenant, events.slice(Math.floor(events.length / 2)));

		const dau = await expectWindows(tenant, events, "day", first, NOW);
		const wau = await expectWindows(tenant, events, "week", first, NOW);
		const mau = await expectWindows(tenant, events, "month", first, NOW);
		expect([dau.length, wau.length, mau.length]).toEqual([41, 6, 2]);
		// Every user is in one of the two months, and a month's users are at least those of its busiest week.
		expect(new Set(events.map((e) => e.userId)).size).toBe(users);
		expect(Math.max(...mau)).toBeGreaterThanOrEqual(Math.max(...wau));
		// Nobody is active on 20 March; with 15,000 users every other day has more than 128.
		expect(dau.at(-1)).toBe(0);
		if (users > 128) expect(Math.min(...dau.slice(0, -1))).toBeGreaterThan(128);
	});
});
