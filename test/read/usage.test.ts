// GET /v1/usage: exact decimal sums per sku, unit and bucket from D1, as JSON or CSV.
import { describe, expect, it } from "vitest";
import { call, createTenant, getJson } from "../helpers";
import { seedUsage, type UsageReport } from "./helpers";

const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe("GET /v1/usage", () => {
	it("sums decimal quantities exactly", async () => {
		const tenant = await createTenant();
		await seedUsage(tenant.id, [
			// Ten events of 0.1 in ten hours: a float sum would give 0.9999999999999999.
			...Array.from({ length: 10 }, (_, i) => ({ sku: "tokens", hour: `2026-03-10T0${i}:00:00.000Z`, micros: "100000" })),
			{ sku: "storage", unit: "gb", hour: "2026-03-10T01:00:00.000Z", micros: "100000" },
			{ sku: "storage", unit: "gb", hour: "2026-03-10T02:00:00.000Z", micros: "200000" },
			{ sku: "storage", unit: "gb", hour: "2026-03-10T03:00:00.000Z", micros: "1", events: 4 },
		]);

		const report = await getJson<UsageReport>("/v1/usage?from=2026-03-10&to=2026-03-11&granularity=day", tenant.readKey);

		expect(report).toEqual({
			tenant: tenant.id,
			from: "2026-03-10T00:00:00.000Z",
			to: "2026-03-11T00:00:00.000Z",
			granularity: "day",
			items: [
				{
					sku: "storage",
					unit: "gb",
					period: "2026-03-10T00:00:00.000Z",
					quantity: 0.300001,
					quantityDecimal: "0.300001",
					events: 6,
				},
				{ sku: "tokens", unit: "unit", period: "2026-03-10T00:00:00.000Z", quantity: 1, quantityDecimal: "1", events: 10 },
			],
			adjustments: [],
		});
	});

	describe("buckets", () => {
		const rows = [
			{ sku: "api", unit: "call", hour: "2026-01-31T23:00:00.000Z", micros: "1500000", events: 3 },
			{ sku: "api", unit: "call", hour: "2026-02-01T00:00:00.000Z", micros: "250000", events: 1 },
			{ sku: "api", unit: "call", hour: "2026-02-01T05:00:00.000Z", micros: "2000000", events: 2 },
			{ sku: "api", unit: "request", hour: "2026-02-01T05:00:00.000Z", micros: "7", events: 7 },
			{ sku: "storage", unit: "gb", hour: "2026-02-01T00:00:00.000Z", micros: "123456789", events: 1 },
			{ sku: "api", unit: "call", hour: "2026-02-14T12:00:00.000Z", micros: "10000000", events: 5 },
		];

		it.each([
			[
				"hour",
				[
					{ sku: "api", unit: "call", period: "2026-01-31T23:00:00.000Z", quantity: 1.5, quantityDecimal: "1.5", events: 3 },
					{ sku: "api", unit: "call", period: "2026-02-01T00:00:00.000Z", quantity: 0.25, quantityDecimal: "0.25", events: 1 },
					{
						sku: "storage",
						unit: "gb",
						period: "2026-02-01T00:00:00.000Z",
						quantity: 123.456789,
						quantityDecimal: "123.456789",
						events: 1,
					},
					{ sku: "api", unit: "call", period: "2026-02-01T05:00:00.000Z", quantity: 2, quantityDecimal: "2", events: 2 },
					{
						sku: "api",
						unit: "request",
						period: "2026-02-01T05:00:00.000Z",
						quantity: 0.000007,
						quantityDecimal: "0.000007",
						events: 7,
					},
					{ sku: "api", unit: "call", period: "2026-02-14T12:00:00.000Z", quantity: 10, quantityDecimal: "10", events: 5 },
				],
			],
			[
				"day",
				[
					{ sku: "api", unit: "call", period: "2026-01-31T00:00:00.000Z", quantity: 1.5, quantityDecimal: "1.5", events: 3 },
					{ sku: "api", unit: "call", period: "2026-02-01T00:00:00.000Z", quantity: 2.25, quantityDecimal: "2.25", events: 3 },
					{
						sku: "api",
						unit: "request",
						period: "2026-02-01T00:00:00.000Z",
						quantity: 0.000007,
						quantityDecimal: "0.000007",
						events: 7,
					},
					{
						sku: "storage",
						unit: "gb",
						period: "2026-02-01T00:00:00.000Z",
						quantity: 123.456789,
						quantityDecimal: "123.456789",
						events: 1,
					},
					{ sku: "api", unit: "call", period: "2026-02-14T00:00:00.000Z", quantity: 10, quantityDecimal: "10", events: 5 },
				],
			],
			[
				"month",
				[
					{ sku: "api", unit: "call", period: "2026-01-01T00:00:00.000Z", quantity: 1.5, quantityDecimal: "1.5", events: 3 },
					{ sku: "api", unit: "call", period: "2026-02-01T00:00:00.000Z", quantity: 12.25, quantityDecimal: "12.25", events: 8 },
					{
						sku: "api",
						unit: "request",
						period: "2026-02-01T00:00:00.000Z",
						quantity: 0.000007,
						quantityDecimal: "0.000007",
						events: 7,
					},
					{
						sku: "storage",
						unit: "gb",
						period: "2026-02-01T00:00:00.000Z",
						quantity: 123.456789,
						quantityDecimal: "123.456789",
						events: 1,
					},
				],
			],
		])("groups by %s, naming each bucket by its ISO start, ordered by period, sku and unit", async (granularity, items) => {
			const tenant = await createTenant();
			await seedUsage(tenant.id, rows);

			const report = await getJson<UsageReport>(`/v1/usage?from=2026-01-01&to=2026-03-01&granularity=${granularity}`, tenant.readKey);

			expect(report).toEqual({
				tenant: tenant.id,
				from: "2026-01-01T00:00:00.000Z",
				to: "2026-03-01T00:00:00.000Z",
				granularity,
				items,
				adjustments: [],
			});
		});
	});

	it("includes from and excludes to", async () => {
		const tenant = await createTenant();
		await seedUsage(
			tenant.id,
			["09", "10", "11", "12"].map((hh) => ({ sku: "tokens", hour: `2026-03-10T${hh}:00:00.000Z`, micros: `${hh}000000` })),
		);

		// 12:00+02:00 is 10:00 UTC: the range is normalized to UTC.
		const report = await getJson<UsageReport>(
			`/v1/usage?granularity=hour&from=${encodeURIComponent("2026-03-10T12:00:00+02:00")}&to=2026-03-10T12:00:00Z`,
			tenant.readKey,
		);

		expect(report.from).toBe("2026-03-10T10:00:00.000Z");
		expect(report.to).toBe("2026-03-10T12:00:00.000Z");
		expect(report.items).toEqual([
			{ sku: "tokens", unit: "unit", period: "2026-03-10T10:00:00.000Z", quantity: 10, quantityDecimal: "10", events: 1 },
			{ sku: "tokens", unit: "unit", period: "2026-03-10T11:00:00.000Z", quantity: 11, quantityDecimal: "11", events: 1 },
		]);
	});

	it("defaults to the current UTC month, by day", async () => {
		const tenant = await createTenant();
		const now = new Date();
		const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
		const nextMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
		const thisHour = now.getTime() - (now.getTime() % HOUR);
		await seedUsage(tenant.id, [
			{ sku: "before", hour: iso(monthStart - HOUR), micros: "1000000" },
			{ sku: "first", hour: iso(monthStart), micros: "2000000" },
			{ sku: "now", hour: iso(thisHour), micros: "3000000" },
			{ sku: "after", hour: iso(nextMonth), micros: "4000000" },
		]);

		const report = await getJson<UsageReport>("/v1/usage", tenant.readKey);

		const day = (ms: number) => `${iso(ms).slice(0, 10)}T00:00:00.000Z`;
		expect(report).toEqual({
			tenant: tenant.id,
			from: iso(monthStart),
			to: iso(nextMonth),
			granularity: "day",
			items: [
				{ sku: "first", unit: "unit", period: day(monthStart), quantity: 2, quantityDecimal: "2", events: 1 },
				{ sku: "now", unit: "unit", period: day(thisHour), quantity: 3, quantityDecimal: "3", events: 1 },
			].sort((a, b) => a.period.localeCompare(b.period)),
			adjustments: [],
		});
	});

	it("shows a tenant only its own usage", async () => {
		const [mine, theirs] = await Promise.all([createTenant(), createTenant()]);
		const hour = "2026-03-10T10:00:00.000Z";
		await seedUsage(mine.id, [{ sku: "tokens", hour, micros: "1000000" }]);
		await seedUsage(theirs.id, [
			{ sku: "tokens", hour, micros: "5000000", events: 5 },
			{ sku: "secret", hour, micros: "1", events: 1 },
		]);

		const report = await getJson<UsageReport>("/v1/usage?from=2026-03-10&to=2026-03-11", mine.readKey);

		expect(report.tenant).toBe(mine.id);
		expect(report.items).toEqual([
			{ sku: "tokens", unit: "unit", period: "2026-03-10T00:00:00.000Z", quantity: 1, quantityDecimal: "1", events: 1 },
		]);
	});

	describe("as CSV", () => {
		it("answers text/csv with a header and CRLF line ends when asked", async () => {
			const tenant = await createTenant();
			await seedUsage(tenant.id, [
				{ sku: "tokens", unit: "token", hour: "2026-03-10T10:00:00.000Z", micros: "100000", events: 1 },
				{ sku: "tokens", unit: "token", hour: "2026-03-10T11:00:00.000Z", micros: "200000", events: 2 },
				{ sku: 'plan "pro", yearly', unit: "seat", hour: "2026-03-10T10:00:00.000Z", micros: "5000000", events: 1 },
				{ sku: "=HYPERLINK()", unit: "-1", hour: "2026-03-11T00:00:00.000Z", micros: "0", events: 3 },
			]);

			const response = await call("/v1/usage?from=2026-03-10&to=2026-03-12", {
				key: tenant.readKey,
				headers: { accept: "text/csv" },
			});

			expect(response.status).toBe(200);
			expect(response.headers.get("content-type")).toBe("text/csv; charset=utf-8");
			expect(await response.text()).toBe(
				"period,sku,unit,quantity,events,adjustment_for\r\n" +
					'2026-03-10T00:00:00.000Z,"plan ""pro"", yearly",seat,5,1,\r\n' +
					"2026-03-10T00:00:00.000Z,tokens,token,0.3,3,\r\n" +
					"2026-03-11T00:00:00.000Z,'=HYPERLINK(),'-1,0,3,\r\n",
			);
		});

		it("keeps sums past 2^53 micro-units exact", async () => {
			const tenant = await createTenant();
			await seedUsage(tenant.id, [
				{ sku: "bytes", hour: "2026-03-10T10:00:00.000Z", micros: "9000000000000000" },
				{ sku: "bytes", hour: "2026-03-10T11:00:00.000Z", micros: "9000000000000000" },
				{ sku: "bytes", hour: "2026-03-10T12:00:00.000Z", micros: "123457" },
			]);

			const response = await call("/v1/usage?from=2026-03-01&to=2026-04-01&granularity=month", {
				key: tenant.readKey,
				headers: { accept: "application/json, text/csv;q=0.9" },
			});

			expect(await response.text()).toBe(
				"period,sku,unit,quantity,events,adjustment_for\r\n2026-03-01T00:00:00.000Z,bytes,unit,18000000000.123457,3,\r\n",
			);
		});

		it("answers only the header for an empty range", async () => {
			const tenant = await createTenant();

			const response = await call("/v1/usage?from=2026-03-10&to=2026-03-11", {
				key: tenant.readKey,
				headers: { accept: "text/csv" },
			});

			expect(await response.text()).toBe("period,sku,unit,quantity,events,adjustment_for\r\n");
		});
	});
});
