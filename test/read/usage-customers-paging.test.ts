// GET /v1/usage?groupBy=customer at scale: 2,500 customers in D1 and a few only in the aggregator's
// pending rows (before, between and after them, one in both), paged with limit 1000 and 7: every
// customer exactly once and in order, a customer never split across pages, totals exact. Also the
// CSV pages, with customer_id and x-next-cursor, and every 400 of the new parameters.
import { describe, expect, it } from "vitest";
import { call, createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import {
	adjustment,
	allPages,
	dayOf,
	expectedItems,
	feed,
	flush,
	iso,
	invalid,
	monthOf,
	pageCustomers,
	statusAndBody,
	usageEvent,
	usageReport,
	seedAdjustments,
	seedCustomerUsage,
	type AdjustmentRow,
	type CustomerUsageRow,
} from "./query-helpers";

const NOW = Date.UTC(2100, 2, 20, 12);
useFrozenClock(() => freezeClockAt(NOW));

const MARCH = "from=2100-03-01&to=2100-04-01";
const BOOKED = "2100-03-01T00:00:00.000Z";
const customerOf = (i: number) => `c-${String(i).padStart(5, "0")}`;
const hourAt = (day: number, hour: number) => iso(Date.UTC(2100, 2, day, hour));

/** D1's rows: 2,500 customers with one to three rows each (some past 2^53 micro-units), and usage without a customer. */
function storedRows(): CustomerUsageRow[] {
	const rows: CustomerUsageRow[] = [];
	for (let i = 0; i < 2500; i++) {
		const customer = customerOf(i);
		const big = i % 500 === 0 ? 9_000_000_000_000_000n : 0n;
		rows.push({
			customer,
			sku: "tokens",
			unit: "token",
			hour: hourAt(1 + (i % 19), i % 24),
			micros: big + BigInt((i * 7919) % 1_000_003) + 1n,
			events: 1 + (i % 5),
		});
		if (i % 3 === 0)
			rows.push({ customer, sku: "storage", unit: "GB", hour: hourAt(2 + (i % 17), 23), micros: BigInt(i) * 1000n + 7n, events: 2 });
		if (i % 7 === 0) rows.push({ customer, sku: "tokens", unit: "token", hour: hourAt(20, 0), micros: 1n, events: 1 });
	}
	rows.push({ customer: "", sku: "tokens", unit: "token", hour: hourAt(5, 5), micros: 123_456_789n, events: 3 });
	rows.push({ customer: "", sku: "storage", unit: "GB", hour: hourAt(6, 6), micros: 1n, events: 1 });
	// Outside March: neither a page's customer nor part of its totals.
	rows.push({ customer: "c-00000-feb", sku: "tokens", unit: "token", hour: hourAt(0, 23), micros: 5n, events: 1 });
	rows.push({ customer: "c-00001", sku: "tokens", unit: "token", hour: iso(Date.UTC(2100, 3, 1)), micros: 5n, events: 1 });
	return rows;
}

/** D1's adjustments: every hundredth customer, and one customer with nothing else. */
function storedAdjustments(): AdjustmentRow[] {
	const rows: AdjustmentRow[] = [];
	for (let i = 0; i < 2500; i += 100) {
		rows.push({
			customer: customerOf(i),
			sku: "tokens",
			unit: "token",
			period: "2100-02",
			booked: BOOKED,
			micros: BigInt(i) + 1n,
			events: 1,
		});
	}
	rows.push({ customer: "c-01500-adj", sku: "storage", unit: "GB", period: "2100-02", booked: BOOKED, micros: 42n, events: 4 });
	return rows;
}

/** Pending only in the aggregator: before every stored customer, between two, at a page boundary, after all; one stored customer gets more. */
const pendingEvents = () => [
	usageEvent(Date.UTC(2100, 2, 20, 10, 5), 2_000_000, "tokens", "token", "a-first"),
	usageEvent(Date.UTC(2100, 2, 20, 11), 500_000, "storage", "GB", "c-01234-mid"),
	usageEvent(Date.UTC(2100, 2, 19, 8), 1, "tokens", "token", "c-00997-x"),
	// c-00777's stored row is at 18 March 09:00: the same hour, and a new day.
	usageEvent(Date.UTC(2100, 2, 18, 9, 30), 1_250_000, "tokens", "token", "c-00777"),
	usageEvent(Date.UTC(2100, 2, 20, 11, 1), 3, "storage", "GB", "c-00777"),
	usageEvent(Date.UTC(2100, 2, 20, 11, 59), 3_000_000, "tokens", "token", "z-last"),
	usageEvent(Date.UTC(2100, 2, 20, 11, 58), 1, "tokens", "token"),
];

/** The ledger: every stored row and pending event, as expectedItems sums them. */
function ledger() {
	const stored = storedRows().map((r) => ({
		customer: r.customer,
		sku: r.sku,
		unit: r.unit,
		at: r.hour,
		micros: r.micros,
		events: r.events,
	}));
	const pending = pendingEvents().map((e) => ({
		customer: e.customerId ?? "",
		sku: e.usage!.sku,
		unit: e.usage!.unit,
		at: iso(e.timestamp),
		micros: BigInt(e.usage!.micros),
		events: 1,
	}));
	return [...stored, ...pending].filter((entry) => entry.at.startsWith("2100-03"));
}

const expectedAdjustments = storedAdjustments()
	.sort((a, b) => (a.customer < b.customer ? -1 : 1))
	.map((r) => adjustment(BOOKED, r.period, r.sku, r.unit, r.micros, r.events, r.customer));

/** Pages through every customer and checks the pages against the ledger. */
async function expectPaged(tenant: TestTenant, limit: number): Promise<void> {
	const items = expectedItems(ledger(), dayOf, true);
	const customers = [...new Set([...items, ...expectedAdjustments].map((i) => i.customerId!))].sort((a, b) =>
		(a ?? "") < (b ?? "") ? -1 : 1,
	);
	expect(customers.length).toBe(2500 + 2 + 4);

	const pages = await allPages(tenant, `${MARCH}&granularity=day`, limit);
	expect(pages.length).toBe(Math.ceil(customers.length / limit));
	// nextCursor is null on the last page only, and each page but the last holds exactly `limit` customers.
	expect(pages.map((page) => page.nextCursor === null)).toEqual(pages.map((_, i) => i === pages.length - 1));
	const perPage = pages.map((page) => pageCustomers(page).sort((a, b) => ((a ?? "") < (b ?? "") ? -1 : 1)));
	expect(perPage.map((c) => c.length)).toEqual(pages.map((_, i) => (i < pages.length - 1 ? limit : customers.length - limit * i)));
	// Every customer on exactly one page, in order: no customer's rows are split between pages.
	expect(perPage.flat()).toEqual(customers);
	expect(pages.flatMap((page) => page.items)).toEqual(items);
	expect(pages.flatMap((page) => page.adjustments)).toEqual(expectedAdjustments);
	for (const page of pages) {
		expect(page).toEqual({
			tenant: tenant.id,
			from: "2100-03-01T00:00:00.000Z",
			to: "2100-04-01T00:00:00.000Z",
			granularity: "day",
			groupBy: "customer",
			items: expect.any(Array),
			adjustments: expect.any(Array),
			nextCursor: page.nextCursor === null ? null : expect.any(String),
		});
	}
}

describe("GET /v1/usage?groupBy=customer at scale", () => {
	it("pages 2,506 customers, stored and pending, each exactly once, in order and whole, with exact totals", async () => {
		const tenant = await createTenant();
		await seedCustomerUsage(tenant.id, storedRows());
		await seedAdjustments(tenant.id, storedAdjustments());
		await feed(tenant, pendingEvents());

		await expectPaged(tenant, 1000);
		await expectPaged(tenant, 7);
		// The default page is 100 customers.
		const first = await usageReport(tenant, `${MARCH}&granularity=day&groupBy=customer`);
		expect(pageCustomers(first).length).toBe(100);
		expect(first.nextCursor).toEqual(expect.any(String));

		// The default report (this month, by day) summed per month equals the ledger's grand total.
		const total = await usageReport(tenant, "granularity=month");
		expect(total).toEqual({
			tenant: tenant.id,
			from: "2100-03-01T00:00:00.000Z",
			to: "2100-04-01T00:00:00.000Z",
			granularity: "month",
			items: expectedItems(ledger(), monthOf, false),
			adjustments: [
				adjustment(BOOKED, "2100-02", "storage", "GB", 42n, 4),
				adjustment(
					BOOKED,
					"2100-02",
					"tokens",
					"token",
					storedAdjustments().reduce((s, r) => s + (r.sku === "tokens" ? r.micros : 0n), 0n),
					25,
				),
			],
		});
		expect(total.items.map((i) => i.quantityDecimal)).toEqual(["1042.588842", "45000001369.615408"]);

		// Flushed: the same pages from D1 alone.
		expect(await flush(tenant)).toBeGreaterThan(0);
		await expectPaged(tenant, 1000);
		expect(await usageReport(tenant, "granularity=month")).toEqual(total);
	});
});

describe("GET /v1/usage?groupBy=customer beyond ASCII", () => {
	// SQLite orders text by its UTF-8 bytes, JavaScript by UTF-16 code units: the two disagree
	// between U+E000–U+FFFF and characters past U+FFFF (surrogate pairs), so "！" (U+FF01) sorts
	// before "😀" (U+1F600) in D1 and after it in JavaScript.
	const ids = ["a", "é", "\uFF01", "\u{1F600}", "z\u{1F600}", "z\uFFFD"];

	it.each([
		["stored in D1", true],
		["pending in the aggregator", false],
	])("pages every customer exactly once when they are %s", async (_, stored) => {
		const tenant = await createTenant();
		if (stored) {
			await seedCustomerUsage(
				tenant.id,
				ids.map((customer) => ({ customer, sku: "tokens", unit: "token", hour: hourAt(3, 0), micros: 1n, events: 1 })),
			);
		} else
			await feed(
				tenant,
				ids.map((customer) => usageEvent(Date.UTC(2100, 2, 3), 1, "tokens", "token", customer)),
			);
		for (const limit of [1, 2, 1000]) {
			const pages = await allPages(tenant, `${MARCH}&granularity=month`, limit);
			expect(pages.flatMap(pageCustomers).sort()).toEqual([...ids].sort());
		}
	});
});

describe("GET /v1/usage?groupBy=customer as CSV", () => {
	it("adds a customer_id column, quotes it, and names the next page in x-next-cursor", async () => {
		const tenant = await createTenant();
		await feed(tenant, [
			usageEvent(Date.UTC(2100, 2, 3, 4), 1_500_000, "tokens", "token", "acme"),
			usageEvent(Date.UTC(2100, 2, 3, 5), 250_000, "storage", "GB", "=cmd,1"),
			usageEvent(Date.UTC(2100, 2, 4), 7, "tokens", "token"),
		]);
		const csv = (query: string) =>
			call(`/v1/usage?${MARCH}&granularity=day&${query}`, { key: tenant.readKey, headers: { accept: "text/csv" } });
		const header = "period,sku,unit,quantity,events,adjustment_for";

		const first = await csv("groupBy=customer&limit=2");
		expect(first.status).toBe(200);
		expect(first.headers.get("content-type")).toBe("text/csv; charset=utf-8");
		expect(await first.text()).toBe(
			`${header},customer_id\r\n2100-03-04T00:00:00.000Z,tokens,token,0.000007,1,,\r\n2100-03-03T00:00:00.000Z,storage,GB,0.25,1,,"'=cmd,1"\r\n`,
		);
		const cursor = first.headers.get("x-next-cursor");
		expect(cursor).toEqual(expect.any(String));
		const second = await csv(`groupBy=customer&limit=2&cursor=${encodeURIComponent(cursor!)}`);
		expect(second.headers.get("x-next-cursor")).toBeNull();
		expect(await second.text()).toBe(`${header},customer_id\r\n2100-03-03T00:00:00.000Z,tokens,token,1.5,1,,acme\r\n`);

		// One customer, or none named: no customer_id column and no cursor.
		const one = await csv("customerId=acme");
		expect(one.headers.get("x-next-cursor")).toBeNull();
		expect(await one.text()).toBe(`${header}\r\n2100-03-03T00:00:00.000Z,tokens,token,1.5,1,\r\n`);
		expect(await (await csv("")).text()).toBe(
			`${header}\r\n2100-03-03T00:00:00.000Z,storage,GB,0.25,1,\r\n2100-03-03T00:00:00.000Z,tokens,token,1.5,1,\r\n2100-03-04T00:00:00.000Z,tokens,token,0.000007,1,\r\n`,
		);
	});
});

describe("GET /v1/usage per customer: 400s", () => {
	const LIMIT = "must be an integer 1-1000";
	const CURSOR = "must be a nextCursor from a previous page";
	it.each([
		["customerId=", "customerId", "must be 1-256 characters"],
		[`customerId=${"c".repeat(257)}`, "customerId", "must be 1-256 characters"],
		["groupBy=sku", "groupBy", 'must be "customer" or absent'],
		["groupBy=", "groupBy", 'must be "customer" or absent'],
		["groupBy=Customer", "groupBy", 'must be "customer" or absent'],
		["groupBy=customer&customerId=acme", "groupBy", "cannot be combined with customerId, which names one customer"],
		["limit=10", "limit", "pages only groupBy=customer"],
		["customerId=acme&limit=10", "limit", "pages only groupBy=customer"],
		["cursor=IiI", "cursor", "pages only groupBy=customer"],
		["groupBy=customer&limit=0", "limit", LIMIT],
		["groupBy=customer&limit=1001", "limit", LIMIT],
		["groupBy=customer&limit=-1", "limit", LIMIT],
		["groupBy=customer&limit=1.5", "limit", LIMIT],
		["groupBy=customer&limit=ten", "limit", LIMIT],
		["groupBy=customer&limit=", "limit", LIMIT],
		["groupBy=customer&cursor=", "cursor", CURSOR],
		["groupBy=customer&cursor=!!!", "cursor", CURSOR],
		// Valid base64url, but of JSON that is no customer: 123, and text that is not JSON.
		["groupBy=customer&cursor=MTIz", "cursor", CURSOR],
		["groupBy=customer&cursor=YWNtZQ", "cursor", CURSOR],
		["groupBy=customer&groupBy=customer", "groupBy", "given more than once"],
		["groupBy=customer&customer=acme", "customer", "unknown query parameter"],
	])("answers 400 for %s, naming %s", async (query, field, message) => {
		const tenant = await createTenant();
		expect(await statusAndBody(`/v1/usage?${query}`, tenant.readKey)).toEqual(invalid(field, message));
	});

	it("accepts the longest customerId and the page bounds", async () => {
		const tenant = await createTenant();
		for (const query of [`customerId=${"c".repeat(256)}`, "customerId=c", "groupBy=customer&limit=1", "groupBy=customer&limit=1000"]) {
			expect((await call(`/v1/usage?${query}`, { key: tenant.readKey })).status).toBe(200);
		}
		expect(await usageReport(tenant, "groupBy=customer&limit=1")).toEqual({
			tenant: tenant.id,
			from: "2100-03-01T00:00:00.000Z",
			to: "2100-04-01T00:00:00.000Z",
			granularity: "day",
			groupBy: "customer",
			items: [],
			adjustments: [],
			nextCursor: null,
		});
	});
});
