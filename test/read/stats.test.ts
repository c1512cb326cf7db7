// GET /v1/stats: counts, 5xx errors and duration summaries per event name and bucket.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { deliver, eventsMessage, queuedEvent } from "../consumer/helpers";
import { createTenant, freezeClockAt, getJson, useFrozenClock } from "../helpers";
import { seedEvents, type StatsReport } from "./helpers";

// Frozen with the seeded minutes (10–11 March 2026) within the 7 days minute granularity covers.
useFrozenClock(() => freezeClockAt(Date.UTC(2026, 2, 11, 12)));

const MINUTE = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();
const none = { count: 0, sum: 0, min: null, max: null };

describe("GET /v1/stats", () => {
	const rows = [
		{ event: "api_call", minute: "2026-03-10T10:05:00.000Z", count: 3, errors: 1, durations: { count: 2, sum: 30, min: 10, max: 20 } },
		{ event: "api_call", minute: "2026-03-10T10:59:00.000Z", count: 2, durations: { count: 2, sum: 5.5, min: 1.25, max: 4.25 } },
		{ event: "page_view", minute: "2026-03-10T10:05:00.000Z", count: 4 },
		{ event: "api_call", minute: "2026-03-10T11:00:00.000Z", count: 1, errors: 1 },
		{
			event: "api_call",
			minute: "2026-03-11T00:00:00.000Z",
			count: 5,
			errors: 2,
			durations: { count: 5, sum: 500, min: 50, max: 200 },
		},
	];

	it.each([
		[
			"minute",
			[
				{
					event: "api_call",
					period: "2026-03-10T10:05:00.000Z",
					count: 3,
					errors: 1,
					duration: { count: 2, sum: 30, min: 10, max: 20 },
				},
				{ event: "page_view", period: "2026-03-10T10:05:00.000Z", count: 4, errors: 0, duration: none },
				{
					event: "api_call",
					period: "2026-03-10T10:59:00.000Z",
					count: 2,
					errors: 0,
					duration: { count: 2, sum: 5.5, min: 1.25, max: 4.25 },
				},
				{ event: "api_call", period: "2026-03-10T11:00:00.000Z", count: 1, errors: 1, duration: none },
				{
					event: "api_call",
					period: "2026-03-11T00:00:00.000Z",
					count: 5,
					errors: 2,
					duration: { count: 5, sum: 500, min: 50, max: 200 },
				},
			],
		],
		[
			"hour",
			[
				{
					event: "api_call",
					period: "2026-03-10T10:00:00.000Z",
					count: 5,
					errors: 1,
					duration: { count: 4, sum: 35.5, min: 1.25, max: 20 },
				},
				{ event: "page_view", period: "2026-03-10T10:00:00.000Z", count: 4, errors: 0, duration: none },
				{ event: "api_call", period: "2026-03-10T11:00:00.000Z", count: 1, errors: 1, duration: none },
				{
					event: "api_call",
					period: "2026-03-11T00:00:00.000Z",
					count: 5,
					errors: 2,
					duration: { count: 5, sum: 500, min: 50, max: 200 },
				},
			],
		],
		[
			"day",
			[
				{
					event: "api_call",
					period: "2026-03-10T00:00:00.000Z",
					count: 6,
					errors: 2,
					duration: { count: 4, sum: 35.5, min: 1.25, max: 20 },
				},
				{ event: "page_view", period: "2026-03-10T00:00:00.000Z", count: 4, errors: 0, duration: none },
				{
					event: "api_call",
					period: "2026-03-11T00:00:00.000Z",
					count: 5,
					errors: 2,
					duration: { count: 5, sum: 500, min: 50, max: 200 },
				},
			],
		],
	])("groups by %s, ordered by period and event", async (granularity, items) => {
		const tenant = await createTenant();
		await seedEvents(tenant.id, rows);

		const report = await getJson<StatsReport>(`/v1/stats?from=2026-03-10&to=2026-03-12&granularity=${granularity}`, tenant.readKey);

		expect(report).toEqual({ tenant: tenant.id, from: "2026-03-10T00:00:00.000Z", to: "2026-03-12T00:00:00.000Z", granularity, items });
	});

	it("includes from and excludes to", async () => {
		const tenant = await createTenant();
		await seedEvents(tenant.id, rows);

		const report = await getJson<StatsReport>(
			"/v1/stats?from=2026-03-10T10:59:00Z&to=2026-03-11T00:00:00Z&granularity=minute",
			tenant.readKey,
		);

		expect(report.items).toEqual([
			{
				event: "api_call",
				period: "2026-03-10T10:59:00.000Z",
				count: 2,
				errors: 0,
				duration: { count: 2, sum: 5.5, min: 1.25, max: 4.25 },
			},
			{ event: "api_call", period: "2026-03-10T11:00:00.000Z", count: 1, errors: 1, duration: none },
		]);
	});

	it("defaults to the current UTC day, by hour", async () => {
		const tenant = await createTenant();
		const now = Date.now();
		const dayStart = now - (now % 86_400_000);
		const thisMinute = now - (now % MINUTE);
		await seedEvents(tenant.id, [
			{ event: "yesterday", minute: iso(dayStart - MINUTE), count: 1 },
			{ event: "midnight", minute: iso(dayStart), count: 2 },
			{ event: "now", minute: iso(thisMinute), count: 3, errors: 3 },
			{ event: "tomorrow", minute: iso(dayStart + 86_400_000), count: 4 },
		]);

		const report = await getJson<StatsReport>("/v1/stats", tenant.readKey);

		const hour = (ms: number) => `${iso(ms).slice(0, 13)}:00:00.000Z`;
		expect(report).toEqual({
			tenant: tenant.id,
			from: iso(dayStart),
			to: iso(dayStart + 86_400_000),
			granularity: "hour",
			items: [
				{ event: "midnight", period: hour(dayStart), count: 2, errors: 0, duration: none },
				{ event: "now", period: hour(thisMinute), count: 3, errors: 3, duration: none },
			].sort((a, b) => a.period.localeCompare(b.period) || a.event.localeCompare(b.event)),
		});
	});

	it("shows a tenant only its own events", async () => {
		const [mine, theirs] = await Promise.all([createTenant(), createTenant()]);
		await seedEvents(mine.id, [{ event: "api_call", minute: "2026-03-10T10:00:00.000Z", count: 1 }]);
		await seedEvents(theirs.id, [
			{ event: "api_call", minute: "2026-03-10T10:00:00.000Z", count: 9, errors: 9 },
			{ event: "secret", minute: "2026-03-10T10:00:00.000Z", count: 1 },
		]);

		const report = await getJson<StatsReport>("/v1/stats?from=2026-03-10&to=2026-03-11&granularity=day", mine.readKey);

		expect(report.tenant).toBe(mine.id);
		expect(report.items).toEqual([{ event: "api_call", period: "2026-03-10T00:00:00.000Z", count: 1, errors: 0, duration: none }]);
	});

	it("counts only status codes of 500 and above as errors, through the aggregator", async () => {
		const tenant = await createTenant();
		const at = Date.UTC(2026, 2, 10, 10, 5, 30);
		const statuses = [200, 302, 404, 499, 500, 503, 599];
		const events = [
			...statuses.map((statusCode, i) =>
				queuedEvent({ event: "api_call", timestamp: at, performance: { statusCode, duration: 10 * (i + 1) } }),
			),
			queuedEvent({ event: "api_call", timestamp: at + 1000 }),
			queuedEvent({ event: "api_call", timestamp: at + 2000, performance: { duration: 0.5 } }),
		];
		const result = await deliver([eventsMessage("m1", tenant.id, events)]);
		expect(result.explicitAcks).toEqual(["m1"]);
		await env.AGGREGATOR.getByName(tenant.id).flush();

		const report = await getJson<StatsReport>("/v1/stats?from=2026-03-10&to=2026-03-11&granularity=minute", tenant.readKey);

		expect(report.items).toEqual([
			{
				event: "api_call",
				period: "2026-03-10T10:05:00.000Z",
				count: 9,
				errors: 3,
				duration: { count: 8, sum: 280.5, min: 0.5, max: 70 },
			},
		]);
	});
});
