// Event minutes older than 7 days folded into hours by the tenant's aggregator alarm: /v1/stats by hour and day unchanged, minutes gone.
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { d1Rows, FROZEN_AT, type EventTotal } from "../aggregator/fixtures";
import { alarmOf, flushVia, HOUR, iso, MINUTE } from "../faults/fixtures";
import { call, createTenant, getJson, type TestTenant } from "../helpers/api";
import { advanceClock, freezeClockAt, useFrozenClock } from "../helpers/clock";
import type { StatsReport } from "./seed";

const DAY = 86_400_000;
const RETENTION = 7 * DAY;

// Each test starts 10 days after the previous one (tests move the clock up to 8 days on), in 2100
// so no alarm fires by itself: only runDurableObjectAlarm runs them.
let tests = 0;
const clock = useFrozenClock(() => freezeClockAt(FROZEN_AT + tests++ * 10 * DAY));

type StatsItem = StatsReport["items"][number];
const none = { count: 0, sum: 0, min: null, max: null };

let next = 0;
function event(name: string, timestamp: number, performance?: QueuedEvent["performance"]): QueuedEvent {
	return { id: `c-${next++}`, event: name, timestamp, ...(performance && { performance }) };
}

async function ingest(tenant: TestTenant, events: QueuedEvent[]): Promise<void> {
	expect(await env.AGGREGATOR.getByName(tenant.id).ingest(tenant.id, events)).toEqual({
		accepted: events.length,
		duplicates: 0,
		refused: [],
	});
}

async function stats(tenant: TestTenant, from: number, to: number, granularity: string): Promise<StatsItem[]> {
	const report = await getJson<StatsReport>(`/v1/stats?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey);
	expect(report).toEqual({ tenant: tenant.id, from: iso(from), to: iso(to), granularity, items: expect.any(Array) });
	return report.items;
}

function minuteRows(tenant: TestTenant): Promise<EventTotal[]> {
	return d1Rows(
		"SELECT event, minute, count, errors, duration_count, duration_sum, duration_min, duration_max FROM event_rollups WHERE tenant = ?1 ORDER BY event, minute",
		tenant.id,
	);
}

function hourRows(tenant: TestTenant): Promise<(Omit<EventTotal, "minute"> & { hour: string })[]> {
	return d1Rows(
		"SELECT event, hour, count, errors, duration_count, duration_sum, duration_min, duration_max FROM event_rollups_hourly WHERE tenant = ?1 ORDER BY event, hour",
		tenant.id,
	);
}

async function runAlarm(tenant: TestTenant): Promise<void> {
	expect(await runDurableObjectAlarm(env.AGGREGATOR.getByName(tenant.id))).toBe(true);
}

/** The start of the UTC hour two hours before `now`, and the hour after it: both complete. */
function twoHours(now: number): [number, number] {
	const first = now - (now % HOUR) - 2 * HOUR;
	return [first, first + HOUR];
}

/** Performance-rich events in `first` and a few in `second`. */
function traffic(first: number, second: number): QueuedEvent[] {
	return [
		event("api_call", first + 5 * MINUTE, { duration: 12.5, statusCode: 200 }),
		event("api_call", first + 5 * MINUTE, { duration: 100.25, statusCode: 503 }),
		event("api_call", first + 40 * MINUTE, { statusCode: 500 }),
		event("api_call", first + 40 * MINUTE + 30_000, { duration: 0.5 }),
		event("page_view", first + 59 * MINUTE),
		event("page_view", first + 59 * MINUTE + 59_999),
		event("api_call", second + 10 * MINUTE, { duration: 7, statusCode: 404 }),
		event("page_view", second + 20 * MINUTE),
	];
}

function byHour(first: number, second: number): StatsItem[] {
	return [
		{ event: "api_call", period: iso(first), count: 4, errors: 2, duration: { count: 3, sum: 113.25, min: 0.5, max: 100.25 } },
		{ event: "page_view", period: iso(first), count: 2, errors: 0, duration: none },
		{ event: "api_call", period: iso(second), count: 1, errors: 0, duration: { count: 1, sum: 7, min: 7, max: 7 } },
		{ event: "page_view", period: iso(second), count: 1, errors: 0, duration: none },
	];
}

function byDay(day: number): StatsItem[] {
	return [
		{ event: "api_call", period: iso(day), count: 5, errors: 2, duration: { count: 4, sum: 120.25, min: 0.5, max: 100.25 } },
		{ event: "page_view", period: iso(day), count: 3, errors: 0, duration: none },
	];
}

function secondHourMinutes(second: number): EventTotal[] {
	return [
		{
			event: "api_call",
			minute: iso(second + 10 * MINUTE),
			count: 1,
			errors: 0,
			duration_count: 1,
			duration_sum: 7,
			duration_min: 7,
			duration_max: 7,
		},
		{
			event: "page_view",
			minute: iso(second + 20 * MINUTE),
			count: 1,
			errors: 0,
			duration_count: 0,
			duration_sum: 0,
			duration_min: null,
			duration_max: null,
		},
	];
}

describe("folding event minutes into hours", () => {
	it("folds each hour once its minutes are 7 days old, and stats by hour and day report the same exact values", async () => {
		const tenant = await createTenant();
		const [first, second] = twoHours(clock.start);
		const day = first - (first % DAY);
		await ingest(tenant, traffic(first, second));
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 5 });
		expect(await stats(tenant, first, second + HOUR, "hour")).toEqual(byHour(first, second));
		expect(await stats(tenant, day, day + DAY, "day")).toEqual(byDay(day));
		// Armed for the end of the oldest flushed minute's hour plus the retention.
		expect(await alarmOf(tenant.id)).toBe(first + HOUR + RETENTION);

		// The first hour is 7 days old: its minutes are folded, the second hour's stay.
		freezeClockAt(first + HOUR + RETENTION);
		await runAlarm(tenant);

		expect(await minuteRows(tenant)).toEqual(secondHourMinutes(second));
		expect(await hourRows(tenant)).toEqual([
			{
				event: "api_call",
				hour: iso(first),
				count: 4,
				errors: 2,
				duration_count: 3,
				duration_sum: 113.25,
				duration_min: 0.5,
				duration_max: 100.25,
			},
			{
				event: "page_view",
				hour: iso(first),
				count: 2,
				errors: 0,
				duration_count: 0,
				duration_sum: 0,
				duration_min: null,
				duration_max: null,
			},
		]);
		expect(await stats(tenant, first, second + HOUR, "hour")).toEqual(byHour(first, second));
		expect(await stats(tenant, day, day + DAY, "day")).toEqual(byDay(day));
		// The second hour's minutes are exactly 7 days old: still reported per minute.
		expect(await stats(tenant, second, second + HOUR, "minute")).toEqual([
			{ event: "api_call", period: iso(second + 10 * MINUTE), count: 1, errors: 0, duration: { count: 1, sum: 7, min: 7, max: 7 } },
			{ event: "page_view", period: iso(second + 20 * MINUTE), count: 1, errors: 0, duration: none },
		]);
		expect(await alarmOf(tenant.id)).toBe(second + HOUR + RETENTION);

		freezeClockAt(second + HOUR + RETENTION);
		await runAlarm(tenant);

		expect(await minuteRows(tenant)).toEqual([]);
		const folded = await hourRows(tenant);
		expect(folded).toEqual([
			{
				event: "api_call",
				hour: iso(first),
				count: 4,
				errors: 2,
				duration_count: 3,
				duration_sum: 113.25,
				duration_min: 0.5,
				duration_max: 100.25,
			},
			{
				event: "api_call",
				hour: iso(second),
				count: 1,
				errors: 0,
				duration_count: 1,
				duration_sum: 7,
				duration_min: 7,
				duration_max: 7,
			},
			{
				event: "page_view",
				hour: iso(first),
				count: 2,
				errors: 0,
				duration_count: 0,
				duration_sum: 0,
				duration_min: null,
				duration_max: null,
			},
			{
				event: "page_view",
				hour: iso(second),
				count: 1,
				errors: 0,
				duration_count: 0,
				duration_sum: 0,
				duration_min: null,
				duration_max: null,
			},
		]);
		expect(await stats(tenant, first, second + HOUR, "hour")).toEqual(byHour(first, second));
		expect(await stats(tenant, day, day + DAY, "day")).toEqual(byDay(day));

		// Nothing is left to fold: the next alarm (the dedupe window's pruning) changes nothing.
		await runAlarm(tenant);
		expect(await hourRows(tenant)).toEqual(folded);
		expect(await minuteRows(tenant)).toEqual([]);
	});

	it("answers 400 naming from for minute stats of a range starting more than 7 days ago", async () => {
		const tenant = await createTenant();
		const [first, second] = twoHours(clock.start);
		await ingest(tenant, traffic(first, second));
		expect((await flushVia(tenant)).status).toBe(200);
		const now = advanceClock(8 * DAY);
		await runAlarm(tenant);
		const message = "minute granularity covers the last 7 days; older stats are kept per hour";

		for (const from of [first, now - RETENTION - 1]) {
			const response = await call(`/v1/stats?from=${iso(from)}&to=${iso(from + HOUR)}&granularity=minute`, { key: tenant.readKey });
			expect({ status: response.status, body: await response.json() }).toEqual({
				status: 400,
				body: { error: { code: "invalid_request", message: `from: ${message}`, details: [{ path: "from", message }] } },
			});
		}
		// From exactly 7 days ago, minutes are reported (there are none in that range).
		expect(await stats(tenant, now - RETENTION, now - RETENTION + HOUR, "minute")).toEqual([]);
		expect(await minuteRows(tenant)).toEqual([]);
		expect(await stats(tenant, first, second + HOUR, "hour")).toEqual(byHour(first, second));
	});

	it("folds a minute flushed after its hour was folded into the same hourly row", async () => {
		const tenant = await createTenant();
		const [first, second] = twoHours(clock.start);
		await ingest(tenant, traffic(first, second));
		expect((await flushVia(tenant)).status).toBe(200);
		advanceClock(8 * DAY);
		await runAlarm(tenant);
		expect(await minuteRows(tenant)).toEqual([]);

		// Eight days late, still inside the 35 days the edge accepts: a slower and a faster call, and a new 5xx.
		await ingest(tenant, [
			event("api_call", first + 10 * MINUTE, { duration: 250, statusCode: 502 }),
			event("api_call", first + 11 * MINUTE, { duration: 0.25 }),
		]);
		const merged = [
			{ event: "api_call", period: iso(first), count: 6, errors: 3, duration: { count: 5, sum: 363.5, min: 0.25, max: 250 } },
			...byHour(first, second).slice(1),
		];
		// Pending, then flushed as minutes older than the retention, then folded by the next alarm.
		expect(await stats(tenant, first, second + HOUR, "hour")).toEqual(merged);
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 2 });
		expect(await stats(tenant, first, second + HOUR, "hour")).toEqual(merged);
		expect(await alarmOf(tenant.id)).toBe(Date.now());
		await runAlarm(tenant);

		expect(await minuteRows(tenant)).toEqual([]);
		expect((await hourRows(tenant)).filter((row) => row.event === "api_call" && row.hour === iso(first))).toEqual([
			{
				event: "api_call",
				hour: iso(first),
				count: 6,
				errors: 3,
				duration_count: 5,
				duration_sum: 363.5,
				duration_min: 0.25,
				duration_max: 250,
			},
		]);
		expect(await stats(tenant, first, second + HOUR, "hour")).toEqual(merged);
	});

	it("folds only its own tenant's minutes", async () => {
		const [mine, theirs] = await Promise.all([createTenant(), createTenant()]);
		const [first, second] = twoHours(clock.start);
		await ingest(mine, traffic(first, second));
		await ingest(theirs, traffic(first, second));
		expect((await flushVia(mine)).status).toBe(200);
		expect((await flushVia(theirs)).status).toBe(200);
		const before = await minuteRows(theirs);
		expect(before).toHaveLength(5);

		advanceClock(8 * DAY);
		await runAlarm(mine);

		expect(await minuteRows(mine)).toEqual([]);
		expect(await minuteRows(theirs)).toEqual(before);
		expect(await hourRows(theirs)).toEqual([]);
	});
});
