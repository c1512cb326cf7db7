// Late usage for a closed month, end to end: booked as an adjustment into the month it arrives in,
// a duplicate dropped, the closed month's usage and CSV never changed, its stats still counted.
import { describe, expect, it, vi } from "vitest";
import { d1Rows } from "../aggregator/helpers";
import { eventsRequest, postThrough } from "../faults/helpers";
import { call, createTenant, freezeClockAt, getJson, RecordingQueue, useFrozenClock, type TestTenant } from "../helpers";
import { flushVia, iso, metricsOf, metricsWith, type StatsReport, type UsageReport } from "../read/helpers";
import { adminClose, bodyOf, closeVia, DECEMBER } from "./helpers";

const HOUR = 3_600_000;
const NOVEMBER = Date.UTC(2100, 10, 1);

// Each test an hour after the previous one, from 3 December 10:00: November is over, and all of it
// lies within the 35 days the edge accepts. Time never runs backwards within the file.
let tests = 0;
const clock = useFrozenClock(() => freezeClockAt(Date.UTC(2100, 11, 3, 10) + tests++ * HOUR));

const CSV_HEADER = "period,sku,unit,quantity,events,adjustment_for\r\n";

function usageReport(tenant: TestTenant, from: string, to: string, granularity: string): Promise<UsageReport> {
	return getJson<UsageReport>(`/v1/usage?from=${from}&to=${to}&granularity=${granularity}`, tenant.readKey);
}

async function usageCsv(tenant: TestTenant, from: string, to: string): Promise<string> {
	const response = await call(`/v1/usage?from=${from}&to=${to}&granularity=month`, {
		key: tenant.readKey,
		headers: { accept: "text/csv" },
	});
	expect(response.status).toBe(200);
	return response.text();
}

/** POSTs wire events through the Worker to the real local queue, and waits until the aggregator has consumed `consumed` events in all. */
async function send(tenant: TestTenant, events: unknown[], consumed: number): Promise<void> {
	const queue = new RecordingQueue();
	expect((await postThrough(queue, eventsRequest(events, tenant.writeKey))).status).toBe(202);
	expect(queue.failed).toBe(0);
	await vi.waitFor(async () => expect((await metricsOf(tenant)).consumed).toBe(consumed), { timeout: 15_000, interval: 50 });
}

describe("late usage for a closed month", () => {
	it("books late usage as an adjustment into the month it arrives in, drops a duplicate, and never changes the closed month", async () => {
		const tenant = await createTenant();
		const nov10 = Date.UTC(2100, 10, 10, 9, 15);
		const nov20 = Date.UTC(2100, 10, 20, 14, 30);
		// The last millisecond of November: still November's usage.
		const nov30 = Date.UTC(2100, 10, 30, 23, 59, 59, 999);
		const dec2 = Date.UTC(2100, 11, 2, 8);
		const n1 = { id: "n1", event: "api_call", timestamp: iso(nov10), usage: { sku: "tokens", quantity: 1.5, unit: "token" } };
		const n2 = { id: "n2", event: "upload", timestamp: iso(nov10), usage: { sku: "storage", quantity: 0.25, unit: "gb" } };
		const n3 = { id: "n3", event: "api_call", timestamp: iso(nov20), usage: { sku: "tokens", quantity: 2.000001, unit: "token" } };
		const d1 = { id: "d1", event: "api_call", timestamp: iso(dec2), usage: { sku: "tokens", quantity: 4, unit: "token" } };
		const late = { id: "late", event: "api_call", timestamp: iso(nov30), usage: { sku: "tokens", quantity: 3.333333, unit: "token" } };

		// Counted and flushed before the close: 2 usage + 2 event rows, and 16 series rows, api_call's
		// and upload's 4 dimensions × hour and day (minutes over 7 days old are not written).
		await send(tenant, [n1, n2], 2);
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 20 });
		// Counted before the close but not flushed: the close flushes them into their own months.
		await send(tenant, [n3, d1], 4);
		const closedAt = Date.now();
		// 2 usage + 2 event rows, and 20 series rows: 4 dimensions × n3's hour and day (its minute is
		// over 7 days old) and d1's minute, hour and day.
		expect(await bodyOf(await closeVia("2100-11", tenant.readKey))).toEqual({
			status: 200,
			body: { tenant: tenant.id, period: "2100-11", closedAt: iso(closedAt), flushed: 24, invoices: { stored: 0, complete: true } },
		});
		expect(await d1Rows("SELECT count(*) AS n FROM usage_adjustments WHERE tenant = ?1", tenant.id)).toEqual([{ n: 0 }]);

		// After the close: a late November event, and n1 sent again.
		await send(tenant, [late, n1], 6);

		const november = {
			tenant: tenant.id,
			from: iso(NOVEMBER),
			to: iso(DECEMBER),
			granularity: "month",
			items: [
				{ sku: "storage", unit: "gb", period: iso(NOVEMBER), quantity: 0.25, quantityDecimal: "0.25", events: 1 },
				{ sku: "tokens", unit: "token", period: iso(NOVEMBER), quantity: 3.500001, quantityDecimal: "3.500001", events: 2 },
			],
			adjustments: [],
		};
		const december = {
			tenant: tenant.id,
			from: iso(DECEMBER),
			to: iso(Date.UTC(2101, 0, 1)),
			granularity: "month",
			items: [{ sku: "tokens", unit: "token", period: iso(DECEMBER), quantity: 4, quantityDecimal: "4", events: 1 }],
			adjustments: [
				{
					sku: "tokens",
					unit: "token",
					period: iso(DECEMBER),
					adjustmentFor: "2100-11",
					quantity: 3.333333,
					quantityDecimal: "3.333333",
					events: 1,
				},
			],
		};
		const decemberByDay = {
			...december,
			granularity: "day",
			items: [{ sku: "tokens", unit: "token", period: iso(dec2 - 8 * HOUR), quantity: 4, quantityDecimal: "4", events: 1 }],
		};
		const novemberCsv = CSV_HEADER + `${iso(NOVEMBER)},storage,gb,0.25,1,\r\n${iso(NOVEMBER)},tokens,token,3.500001,2,\r\n`;
		const decemberCsv = CSV_HEADER + `${iso(DECEMBER)},tokens,token,4,1,\r\n${iso(DECEMBER)},tokens,token,3.333333,1,2100-11\r\n`;
		const expectReports = async () => {
			expect(await usageReport(tenant, "2100-11-01", "2100-12-01", "month")).toEqual(november);
			expect(await usageReport(tenant, "2100-12-01", "2101-01-01", "month")).toEqual(december);
			expect(await usageReport(tenant, "2100-12-01", "2101-01-01", "day")).toEqual(decemberByDay);
			expect(await usageCsv(tenant, "2100-11-01", "2100-12-01")).toBe(novemberCsv);
			expect(await usageCsv(tenant, "2100-12-01", "2101-01-01")).toBe(decemberCsv);
		};

		// Before the flush the adjustment is pending in the aggregator, and the reports already show it.
		await expectReports();
		// 1 adjustment + 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 14 });
		await expectReports();

		expect(
			await d1Rows(
				"SELECT sku, unit, period, booked, micros_hi, micros_lo, events FROM usage_adjustments WHERE tenant = ?1",
				tenant.id,
			),
		).toEqual([
			{ sku: "tokens", unit: "token", period: "2100-11", booked: iso(DECEMBER), micros_hi: 0, micros_lo: 3_333_333, events: 1 },
		]);
		// Only usage is frozen: the late event still counts in November's stats, the duplicate nowhere.
		const stats = await getJson<StatsReport>("/v1/stats?from=2100-11-01&to=2100-12-01&granularity=day", tenant.readKey);
		const none = { count: 0, sum: 0, min: null, max: null };
		expect(stats.items).toEqual([
			{ event: "api_call", period: iso(Date.UTC(2100, 10, 10)), count: 1, errors: 0, duration: none },
			{ event: "upload", period: iso(Date.UTC(2100, 10, 10)), count: 1, errors: 0, duration: none },
			{ event: "api_call", period: iso(Date.UTC(2100, 10, 20)), count: 1, errors: 0, duration: none },
			{ event: "api_call", period: iso(Date.UTC(2100, 10, 30)), count: 1, errors: 0, duration: none },
		]);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { received: 6, enqueued: 6, consumed: 6, duplicatesDropped: 1, aggregated: 5, flushedRows: 20 + 24 + 14 }),
		);
		expect(await getJson("/v1/periods", tenant.readKey)).toEqual({
			tenant: tenant.id,
			closed: [{ period: "2100-11", closedAt: iso(closedAt) }],
		});
	});

	it("keeps booking late usage as adjustments after the admin closed the month, summing them per sku", async () => {
		const tenant = await createTenant();
		const nov = Date.UTC(2100, 10, 28, 12);
		expect((await adminClose(tenant.id, "2100-11")).status).toBe(200);

		await send(
			tenant,
			[
				{ id: "a", event: "api_call", timestamp: iso(nov), usage: { sku: "tokens", quantity: 0.1 } },
				{ id: "b", event: "api_call", timestamp: iso(nov + HOUR), usage: { sku: "tokens", quantity: 0.2 } },
				{ id: "c", event: "api_call", timestamp: iso(nov), usage: { sku: "seats", quantity: 1, unit: "seat" } },
			],
			3,
		);

		expect(await usageReport(tenant, "2100-11-01", "2101-01-01", "month")).toEqual({
			tenant: tenant.id,
			from: iso(NOVEMBER),
			to: iso(Date.UTC(2101, 0, 1)),
			granularity: "month",
			items: [],
			adjustments: [
				{
					sku: "seats",
					unit: "seat",
					period: iso(DECEMBER),
					adjustmentFor: "2100-11",
					quantity: 1,
					quantityDecimal: "1",
					events: 1,
				},
				{
					sku: "tokens",
					unit: "unit",
					period: iso(DECEMBER),
					adjustmentFor: "2100-11",
					quantity: 0.3,
					quantityDecimal: "0.3",
					events: 2,
				},
			],
		});
		// 2 adjustment + 2 event rows (12:00 and 13:00), and 20 series rows: 4 dimensions × 2 minutes, 2
		// hours and 1 day.
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 24 });
		expect(await d1Rows("SELECT count(*) AS n FROM usage_rollups WHERE tenant = ?1", tenant.id)).toEqual([{ n: 0 }]);
		expect(
			await d1Rows(
				"SELECT sku, unit, period, booked, micros_hi, micros_lo, events FROM usage_adjustments WHERE tenant = ?1 ORDER BY sku",
				tenant.id,
			),
		).toEqual([
			{ sku: "seats", unit: "seat", period: "2100-11", booked: iso(DECEMBER), micros_hi: 0, micros_lo: 1_000_000, events: 1 },
			{ sku: "tokens", unit: "unit", period: "2100-11", booked: iso(DECEMBER), micros_hi: 0, micros_lo: 300_000, events: 2 },
		]);
	});
});
