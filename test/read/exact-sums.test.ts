// Usage sums past int64 through the real aggregator and D1: exact in quantityDecimal and CSV, pending or flushed, stored as micros_hi / micros_lo.
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { d1Rows } from "../aggregator/helpers";
import { eventsRequest, freezeClock, postThrough, previousHour } from "../faults/helpers";
import {
	call,
	createTenant,
	eventsRequest as rawEventsRequest,
	getJson,
	ingest,
	RecordingQueue,
	useFrozenClock,
	type TestTenant,
} from "../helpers";
import { flushVia, HOUR, iso, metricsOf, MINUTE, type UsageReport } from "./helpers";

const clock = useFrozenClock(freezeClock);

const SPLIT = 10n ** 12n;
const CSV_HEADER = "period,sku,unit,quantity,events,adjustment_for\r\n";

function monthStart(ms: number): number {
	const date = new Date(ms);
	return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1);
}

function nextMonth(ms: number): number {
	const date = new Date(ms);
	return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}

function usageReport(tenant: TestTenant, from: number, to: number, granularity: string): Promise<UsageReport> {
	return getJson<UsageReport>(`/v1/usage?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, tenant.readKey);
}

async function usageCsv(tenant: TestTenant, from: number, to: number, granularity: string): Promise<string> {
	const response = await call(`/v1/usage?from=${iso(from)}&to=${iso(to)}&granularity=${granularity}`, {
		key: tenant.readKey,
		headers: { accept: "text/csv" },
	});
	expect(response.status).toBe(200);
	return response.text();
}

/** D1's stored parts of the tenant's usage sums, with their SQLite types, by hour. */
function storedParts(tenant: string) {
	return d1Rows<{ hour: string; micros_hi: number; micros_lo: number; hi_type: string; lo_type: string; events: number }>(
		"SELECT hour, micros_hi, micros_lo, typeof(micros_hi) AS hi_type, typeof(micros_lo) AS lo_type, events FROM usage_rollups WHERE tenant = ?1 ORDER BY hour",
		tenant,
	);
}

/** D1 parts of an exact micro-unit total. */
function parts(total: bigint): { micros_hi: number; micros_lo: number } {
	return { micros_hi: Number(total / SPLIT), micros_lo: Number(total % SPLIT) };
}

let next = 0;
function metered(timestamp: number, micros: number): QueuedEvent {
	return { id: `x-${next++}`, event: "transfer", timestamp, usage: { sku: "bytes", unit: "byte", micros } };
}

describe("usage sums past int64", () => {
	it("sums 2,000 events of 9,000,000,000 units to exactly 18,000,000,000,000, pending, flushed and by month", async () => {
		const tenant = await createTenant();
		const hour = previousHour(clock.start);
		const wire = (i: number) => ({
			id: `big-${i}`,
			event: "transfer",
			timestamp: hour + (i % 60) * MINUTE,
			usage: { sku: "bytes", quantity: 9_000_000_000, unit: "byte" },
		});
		for (const offset of [0, 1000]) {
			const queue = new RecordingQueue();
			const response = await postThrough(
				queue,
				eventsRequest(
					Array.from({ length: 1000 }, (_, i) => wire(offset + i)),
					tenant.writeKey,
				),
			);
			expect(response.status).toBe(202);
			expect(queue.failed).toBe(0);
		}
		await vi.waitFor(async () => expect((await metricsOf(tenant)).consumed).toBe(2000), { timeout: 20_000, interval: 50 });

		const item = { sku: "bytes", unit: "byte", quantity: 18_000_000_000_000, quantityDecimal: "18000000000000", events: 2000 };
		const byHour = {
			tenant: tenant.id,
			from: iso(hour),
			to: iso(hour + HOUR),
			granularity: "hour",
			items: [{ ...item, period: iso(hour) }],
			adjustments: [],
		};
		const month = monthStart(hour);
		const byMonth = {
			tenant: tenant.id,
			from: iso(month),
			to: iso(nextMonth(hour)),
			granularity: "month",
			items: [{ ...item, period: iso(month) }],
			adjustments: [],
		};

		// Nothing is in D1 yet: the read merges the aggregator's pending rows.
		expect(await storedParts(tenant.id)).toEqual([]);
		expect(await usageReport(tenant, hour, hour + HOUR, "hour")).toEqual(byHour);
		expect(await usageReport(tenant, month, nextMonth(hour), "month")).toEqual(byMonth);

		// One usage row and 60 event rows (one per minute), and 248 series rows: 4 dimensions × (60
		// minutes, the hour and the day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 61 + 248 });
		expect(await usageReport(tenant, hour, hour + HOUR, "hour")).toEqual(byHour);
		expect(await usageReport(tenant, month, nextMonth(hour), "month")).toEqual(byMonth);
		expect(await usageCsv(tenant, month, nextMonth(hour), "month")).toBe(
			`${CSV_HEADER}${iso(month)},bytes,byte,18000000000000,2000,\r\n`,
		);
		// 1.8 × 10^19 micro-units: past int64's 9.2 × 10^18, so D1 holds two integer parts.
		expect(await storedParts(tenant.id)).toEqual([
			{ hour: iso(hour), micros_hi: 18_000_000, micros_lo: 0, hi_type: "integer", lo_type: "integer", events: 2000 },
		]);
	});

	it("sums fractional quantities exactly across flushes and hours, carrying between the parts, while quantity is the nearest JSON number", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const second = previousHour(clock.start);
		const first = second - HOUR;
		// 8,999,999,999.999999 units: the low part of each is 999,999,999,999, so every merge carries.
		const nines = 8_999_999_999_999_999;
		const remainder = 7_000_003_114_600_317;
		const ingest = async (events: QueuedEvent[]) =>
			expect(await stub.ingest(tenant.id, events)).toEqual({ accepted: events.length, duplicates: 0, refused: [] });

		await ingest(Array.from({ length: 10 }, (_, i) => metered(first + i * MINUTE, nines)));
		// 1 usage + 10 event rows, and 48 series rows: 4 dimensions × (10 minutes, the hour and the day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 11 + 48 });
		// Merged into D1's row for the first hour: the low parts' sum passes 10^12 and carries.
		await ingest([
			...Array.from({ length: 6 }, (_, i) => metered(first + 30 * MINUTE + i * MINUTE, nines)),
			...Array.from({ length: 7 }, () => metered(second, nines)),
		]);
		// 2 usage + 7 event rows, and 40 series rows: 4 dimensions × (7 minutes, 2 hours and the day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 9 + 40 });
		// Left pending: the reads merge them with D1's row for the second hour.
		await ingest([...Array.from({ length: 8 }, () => metered(second + MINUTE, nines)), metered(second + 2 * MINUTE, remainder)]);

		const firstTotal = 16n * BigInt(nines);
		const secondTotal = 15n * BigInt(nines) + BigInt(remainder);
		expect([firstTotal, secondTotal, firstTotal + secondTotal].map(String)).toEqual([
			"143999999999999984",
			"142000003114600302",
			"286000003114600286",
		]);
		const byHour = {
			tenant: tenant.id,
			from: iso(first),
			to: iso(second + HOUR),
			granularity: "hour",
			items: [
				{
					sku: "bytes",
					unit: "byte",
					period: iso(first),
					quantity: 143999999999.99997,
					quantityDecimal: "143999999999.999984",
					events: 16,
				},
				{
					sku: "bytes",
					unit: "byte",
					period: iso(second),
					quantity: 142000003114.6003,
					quantityDecimal: "142000003114.600302",
					events: 16,
				},
			],
			adjustments: [],
		};
		const month = monthStart(first);
		const byMonth = {
			tenant: tenant.id,
			from: iso(month),
			to: iso(nextMonth(first)),
			granularity: "month",
			items: [
				{
					sku: "bytes",
					unit: "byte",
					period: iso(month),
					quantity: 286000003114.6003,
					quantityDecimal: "286000003114.600286",
					events: 32,
				},
			],
			adjustments: [],
		};
		const csv = `${CSV_HEADER}${iso(month)},bytes,byte,286000003114.600286,32,\r\n`;

		expect(await usageReport(tenant, first, second + HOUR, "hour")).toEqual(byHour);
		expect(await usageReport(tenant, month, nextMonth(first), "month")).toEqual(byMonth);
		expect(await usageCsv(tenant, month, nextMonth(first), "month")).toBe(csv);

		// 1 usage + 2 event rows, and 16 series rows: 4 dimensions × (2 minutes, the hour and the day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 3 + 16 });
		expect(await usageReport(tenant, first, second + HOUR, "hour")).toEqual(byHour);
		// By month D1 sums two low parts past 10^12; the report carries them into the units.
		expect(await usageReport(tenant, month, nextMonth(first), "month")).toEqual(byMonth);
		expect(await usageCsv(tenant, month, nextMonth(first), "month")).toBe(csv);
		expect(await storedParts(tenant.id)).toEqual([
			{ hour: iso(first), ...parts(firstTotal), hi_type: "integer", lo_type: "integer", events: 16 },
			{ hour: iso(second), ...parts(secondTotal), hi_type: "integer", lo_type: "integer", events: 16 },
		]);
		expect(parts(firstTotal)).toEqual({ micros_hi: 143_999, micros_lo: 999_999_999_984 });
		for (const row of await storedParts(tenant.id)) expect(row.micros_lo).toBeLessThan(1e12);
	});
});

describe("quantities a JSON number cannot carry exactly", () => {
	it("refuses a fractional JSON number of 2^33 units or more, and bills the same quantity sent as a decimal string exactly", async () => {
		const tenant = await createTenant();
		const hour = previousHour(clock.start);
		const usage = (quantity: string) => `{"sku": "bytes", "unit": "byte", "quantity": ${quantity}}`;
		// Raw JSON text: JSON.stringify would already print 8999999999.999999 as 8999999999.999998.
		let sends = 0;
		const body = (quantity: string) =>
			`{"events": [{"id": "edge-${sends++}", "event": "transfer", "timestamp": ${hour}, "usage": ${usage(quantity)}}]}`;

		const refused = await ingest(rawEventsRequest(body("8999999999.999999"), tenant.writeKey));
		expect({ status: refused.response.status, body: await refused.response.json(), sent: refused.queue.calls }).toEqual({
			status: 400,
			body: {
				error: {
					code: "invalid_request",
					message: "1 invalid event; nothing was accepted",
					details: [
						{
							index: 0,
							path: "usage.quantity",
							message: `has a fraction and is ≥ ${2 ** 33}, which a JSON number cannot carry exactly; send it as a decimal string`,
						},
					],
				},
			},
			sent: [],
		});

		// Just below 2^33 a number still carries every micro-unit; a decimal string always does.
		const sent: number[] = [];
		for (const quantity of ['"8999999999.999999"', "8589934591.999999"]) {
			const { response, queue } = await ingest(rawEventsRequest(body(quantity), tenant.writeKey));
			expect(response.status).toBe(202);
			sent.push(...queue.messages.flatMap((message) => message.events).map((event) => event.usage!.micros));
		}
		expect(sent).toEqual([8_999_999_999_999_999, 8_589_934_591_999_999]);
		await vi.waitFor(async () => expect((await metricsOf(tenant)).consumed).toBe(2), { timeout: 15_000, interval: 50 });
		expect((await usageReport(tenant, hour, hour + HOUR, "hour")).items).toEqual([
			{
				sku: "bytes",
				unit: "byte",
				period: iso(hour),
				quantity: 17589934591.999996,
				quantityDecimal: "17589934591.999998",
				events: 2,
			},
		]);
	});
});
