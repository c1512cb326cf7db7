// After event minutes were folded into hours: minute stats refused for a range starting more than
// 7 days ago, a late minute folded into its existing hourly row, and only the tenant's own minutes folded.
import { describe, expect, it } from "vitest";
import { FROZEN_AT } from "../aggregator/helpers";
import { alarmOf } from "../faults/helpers";
import { advanceClock, call, createTenant, freezeClockAt, useFrozenClock } from "../helpers";
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
	RETENTION,
	runAlarm,
	timedEvent,
	traffic,
	twoHours,
} from "./helpers";

// Each test starts 10 days after the previous one (tests move the clock up to 8 days on), in 2100
// so no alarm fires by itself: only runDurableObjectAlarm runs them.
let tests = 0;
const clock = useFrozenClock(() => freezeClockAt(FROZEN_AT + tests++ * 10 * DAY));

describe("folding event minutes into hours", () => {
	it("answers 400 naming from for minute stats of a range starting more than 7 days ago", async () => {
		const tenant = await createTenant();
		const [first, second] = twoHours(clock.start);
		await ingestAccepted(tenant, traffic(first, second));
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
		expect(await checkedStats(tenant, now - RETENTION, now - RETENTION + HOUR, "minute")).toEqual([]);
		expect(await minuteRows(tenant)).toEqual([]);
		expect(await checkedStats(tenant, first, second + HOUR, "hour")).toEqual(byHour(first, second));
	});

	it("folds a minute flushed after its hour was folded into the same hourly row", async () => {
		const tenant = await createTenant();
		const [first, second] = twoHours(clock.start);
		await ingestAccepted(tenant, traffic(first, second));
		expect((await flushVia(tenant)).status).toBe(200);
		advanceClock(8 * DAY);
		await runAlarm(tenant);
		expect(await minuteRows(tenant)).toEqual([]);

		// Eight days late, still inside the 35 days the edge accepts: a slower and a faster call, and a new 5xx.
		await ingestAccepted(tenant, [
			timedEvent("api_call", first + 10 * MINUTE, { duration: 250, statusCode: 502 }),
			timedEvent("api_call", first + 11 * MINUTE, { duration: 0.25 }),
		]);
		const merged = [
			{ event: "api_call", period: iso(first), count: 6, errors: 3, duration: { count: 5, sum: 363.5, min: 0.25, max: 250 } },
			...byHour(first, second).slice(1),
		];
		// Pending, then flushed as minutes older than the retention, then folded by the next alarm.
		expect(await checkedStats(tenant, first, second + HOUR, "hour")).toEqual(merged);
		// 2 event rows, and 10 series rows: api_call's total, route "", status 502 and "", country "" (5)
		// in the hour and the day; minutes over 7 days old are not written.
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 12 });
		expect(await checkedStats(tenant, first, second + HOUR, "hour")).toEqual(merged);
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
		expect(await checkedStats(tenant, first, second + HOUR, "hour")).toEqual(merged);
	});

	it("folds only its own tenant's minutes", async () => {
		const [mine, theirs] = await Promise.all([createTenant(), createTenant()]);
		const [first, second] = twoHours(clock.start);
		await ingestAccepted(mine, traffic(first, second));
		await ingestAccepted(theirs, traffic(first, second));
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
