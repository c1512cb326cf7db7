// Event minutes older than 7 days folded into hours by the tenant's aggregator alarm, one hour at a
// time once its minutes are 7 days old: /v1/stats by hour and day unchanged, the minutes gone.
import { describe, expect, it } from "vitest";
import { FROZEN_AT, type EventTotal } from "../aggregator/helpers";
import { alarmOf } from "../faults/helpers";
import { createTenant, freezeClockAt, useFrozenClock } from "../helpers";
import {
	byHour,
	checkedStats,
	DAY,
	flushVia,
	HOUR,
	hourRows,
	ingestAccepted,
	iso,
	MINUTE,
	minuteRows,
	NO_DURATION,
	RETENTION,
	runAlarm,
	traffic,
	twoHours,
	type StatsReport,
} from "./helpers";

// Each test starts 10 days after the previous one (tests move the clock up to 8 days on), in 2100
// so no alarm fires by itself: only runDurableObjectAlarm runs them.
let tests = 0;
const clock = useFrozenClock(() => freezeClockAt(FROZEN_AT + tests++ * 10 * DAY));

type StatsItem = StatsReport["items"][number];

function byDay(day: number): StatsItem[] {
	return [
		{ event: "api_call", period: iso(day), count: 5, errors: 2, duration: { count: 4, sum: 120.25, min: 0.5, max: 100.25 } },
		{ event: "page_view", period: iso(day), count: 3, errors: 0, duration: NO_DURATION },
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
		await ingestAccepted(tenant, traffic(first, second));
		// 5 event rows (minutes), and 53 series rows per dimension value: 22 minute rows (api_call at :05
		// and :40 with 5 each: its total, route "", two status values, country ""; the other three
		// minutes 4 each), 19 hour rows (api_call in the first hour 7, with four status values; the
		// other three 4 each) and 12 day rows (api_call 8, with five status values; page_view 4).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 5 + 22 + 19 + 12 });
		expect(await checkedStats(tenant, first, second + HOUR, "hour")).toEqual(byHour(first, second));
		expect(await checkedStats(tenant, day, day + DAY, "day")).toEqual(byDay(day));
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
		expect(await checkedStats(tenant, first, second + HOUR, "hour")).toEqual(byHour(first, second));
		expect(await checkedStats(tenant, day, day + DAY, "day")).toEqual(byDay(day));
		// The second hour's minutes are exactly 7 days old: still reported per minute.
		expect(await checkedStats(tenant, second, second + HOUR, "minute")).toEqual([
			{ event: "api_call", period: iso(second + 10 * MINUTE), count: 1, errors: 0, duration: { count: 1, sum: 7, min: 7, max: 7 } },
			{ event: "page_view", period: iso(second + 20 * MINUTE), count: 1, errors: 0, duration: NO_DURATION },
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
		expect(await checkedStats(tenant, first, second + HOUR, "hour")).toEqual(byHour(first, second));
		expect(await checkedStats(tenant, day, day + DAY, "day")).toEqual(byDay(day));

		// Nothing is left to fold: the next alarm (the dedupe window's pruning) changes nothing.
		await runAlarm(tenant);
		expect(await hourRows(tenant)).toEqual(folded);
		expect(await minuteRows(tenant)).toEqual([]);
	});
});
