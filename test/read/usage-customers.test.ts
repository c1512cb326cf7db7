// GET /v1/usage per customer: customerId filters one customer, groupBy=customer gives every
// customer its own items (null for usage without one); both exact whether the usage is pending in
// the aggregator, flushed to D1, or part of each, and counted once. Late usage for a closed month
// comes as adjustments per customer.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import { closeVia } from "../billing/helpers";
import {
	adjustment,
	allPages,
	dayOf,
	expectedItems,
	feed,
	flush,
	HOUR,
	iso,
	item,
	MINUTE,
	monthOf,
	pageCustomers,
	usageEvent,
	usageReport,
	type CustomerUsageReport,
} from "./query-helpers";

// 20 March 2100: February is over (so it can be closed) and within the aggregator's dedupe window,
// and no alarm armed against this frozen clock fires by itself.
const NOW = Date.UTC(2100, 2, 20, 12);
useFrozenClock(() => freezeClockAt(NOW));

const MARCH = "from=2100-03-01&to=2100-04-01";
const hourOf = (at: string) => `${at.slice(0, 13)}:00:00.000Z`;

/** The ledger entries of usage events, as expectedItems sums them. */
function ledger(events: QueuedEvent[]) {
	return events.map((e) => ({
		customer: e.customerId ?? "",
		sku: e.usage!.sku,
		unit: e.usage!.unit,
		at: iso(e.timestamp),
		micros: BigInt(e.usage!.micros),
		events: 1,
	}));
}

const H1 = Date.UTC(2100, 2, 19, 9);
const H2 = Date.UTC(2100, 2, 19, 10);
const H3 = Date.UTC(2100, 2, 20, 8);

/** Several customers, skus, units and hours, and usage without a customer. */
const firstEvents = () => [
	usageEvent(H1 + 5 * MINUTE, 1_500_000, "tokens", "token", "acme"),
	usageEvent(H1 + 50 * MINUTE, 250_000, "tokens", "token", "acme"),
	usageEvent(H2 + MINUTE, 2_000_000, "tokens", "token", "acme"),
	usageEvent(H3, 7, "storage", "GB", "acme"),
	usageEvent(H1 + 10 * MINUTE, 3_000_000, "tokens", "token", "beta"),
	usageEvent(H2 + 30 * MINUTE, 1_000_000, "api", "call", "beta"),
	usageEvent(H2 + 31 * MINUTE, 1, "api", "request", "beta"),
	usageEvent(H1 + 20 * MINUTE, 10_000_000, "tokens", "token"),
	usageEvent(H3 + HOUR - 1, 500_000, "storage", "GB"),
];

/** More of the same customers, one new one and more without a customer, in the same and new hours. */
const laterEvents = () => [
	usageEvent(H1 + 6 * MINUTE, 100_000, "tokens", "token", "acme"),
	usageEvent(H3 + 2 * MINUTE, 3, "storage", "GB", "acme"),
	usageEvent(H2 + 45 * MINUTE, 999_999, "api", "call", "beta"),
	usageEvent(H2, 4_200_000, "tokens", "token", "cobalt"),
	usageEvent(H3 + 30 * MINUTE, 1, "storage", "GB"),
];

/** Every view of the usage in `events` answers exactly that usage. */
async function expectViews(tenant: TestTenant, events: QueuedEvent[]): Promise<void> {
	const all = ledger(events);
	const envelope = (granularity: string) => ({
		tenant: tenant.id,
		from: "2100-03-01T00:00:00.000Z",
		to: "2100-04-01T00:00:00.000Z",
		granularity,
		adjustments: [],
	});
	// Without customerId or groupBy: summed across customers, as before.
	expect(await usageReport(tenant, `${MARCH}&granularity=hour`)).toEqual({
		...envelope("hour"),
		items: expectedItems(all, hourOf, false),
	});
	for (const customer of ["acme", "beta", "cobalt"]) {
		const own = all.filter((e) => e.customer === customer);
		expect(await usageReport(tenant, `${MARCH}&granularity=hour&customerId=${customer}`)).toEqual({
			...envelope("hour"),
			customerId: customer,
			items: expectedItems(own, hourOf, false),
		});
	}
	for (const [granularity, bucket] of [
		["hour", hourOf],
		["day", dayOf],
		["month", monthOf],
	] as const) {
		expect(await usageReport(tenant, `${MARCH}&granularity=${granularity}&groupBy=customer`)).toEqual({
			...envelope(granularity),
			groupBy: "customer",
			items: expectedItems(all, bucket, true),
			nextCursor: null,
		});
	}
	// Paged one and two customers at a time (the first page ends on "no customer"): the same items, whole.
	for (const limit of [1, 2]) {
		const pages = await allPages(tenant, `${MARCH}&granularity=day`, limit);
		expect(pages.flatMap((page) => page.items)).toEqual(expectedItems(all, dayOf, true));
		expect(pages.map((page) => pageCustomers(page).length)).toEqual(
			pages.map((_, i) => (i < pages.length - 1 ? limit : expect.any(Number))),
		);
	}
	expect(await usageReport(tenant, `${MARCH}&granularity=day&customerId=nobody`)).toEqual({
		...envelope("day"),
		customerId: "nobody",
		items: [],
	});
}

describe("GET /v1/usage per customer", () => {
	it("answers exact per-customer usage pending, flushed, and part flushed part pending, each event once", async () => {
		const tenant = await createTenant();
		const first = firstEvents();
		await feed(tenant, first);
		await expectViews(tenant, first);

		expect(await flush(tenant)).toBeGreaterThan(0);
		await expectViews(tenant, first);

		// Part flushed, part pending: keys that D1 has get more in the aggregator.
		const later = laterEvents();
		await feed(tenant, later);
		await expectViews(tenant, [...first, ...later]);

		expect(await flush(tenant)).toBeGreaterThan(0);
		await expectViews(tenant, [...first, ...later]);
	});

	it("spells out the expected items for one customer and per customer", async () => {
		const tenant = await createTenant();
		await feed(tenant, [...firstEvents(), ...laterEvents()]);
		await flush(tenant);
		expect((await usageReport(tenant, `${MARCH}&granularity=day&customerId=acme`)).items).toEqual([
			item("2100-03-19T00:00:00.000Z", "tokens", "token", 3_850_000n, 4),
			item("2100-03-20T00:00:00.000Z", "storage", "GB", 10n, 2),
		]);
		const day19 = "2100-03-19T00:00:00.000Z";
		const day20 = "2100-03-20T00:00:00.000Z";
		expect((await usageReport(tenant, `${MARCH}&granularity=day&groupBy=customer`)).items).toEqual([
			item(day19, "tokens", "token", 10_000_000n, 1, null),
			item(day20, "storage", "GB", 500_001n, 2, null),
			item(day19, "tokens", "token", 3_850_000n, 4, "acme"),
			item(day20, "storage", "GB", 10n, 2, "acme"),
			item(day19, "api", "call", 1_999_999n, 2, "beta"),
			item(day19, "api", "request", 1n, 1, "beta"),
			item(day19, "tokens", "token", 3_000_000n, 1, "beta"),
			item(day19, "tokens", "token", 4_200_000n, 1, "cobalt"),
		]);
	});
});

describe("adjustments per customer", () => {
	const FEB = "2100-02";
	const booked = "2100-03-01T00:00:00.000Z";

	it("books late usage of a closed month per customer, pages them with their customer, and never changes the month", async () => {
		const tenant = await createTenant();
		await feed(tenant, [
			usageEvent(Date.UTC(2100, 1, 10), 1_000_000, "tokens", "token", "acme"),
			usageEvent(Date.UTC(2100, 1, 15), 2_000_000, "tokens", "token", "beta"),
			usageEvent(Date.UTC(2100, 1, 20), 3_000_000, "tokens", "token"),
			usageEvent(Date.UTC(2100, 2, 2), 4_000_000, "tokens", "token", "acme"),
		]);
		expect((await closeVia(FEB, tenant.readKey)).status).toBe(200);

		// Late February usage for two customers, and March usage for a third.
		await feed(tenant, [
			usageEvent(Date.UTC(2100, 1, 27, 13), 500_000, "tokens", "token", "acme"),
			usageEvent(Date.UTC(2100, 1, 28, 23, 59, 59, 999), 1_250_000, "storage", "GB", "beta"),
			usageEvent(Date.UTC(2100, 1, 12), 100_000, "tokens", "token", "beta"),
			usageEvent(Date.UTC(2100, 1, 13), 1, "tokens", "token", "beta"),
			usageEvent(Date.UTC(2100, 2, 19), 1_000_000, "tokens", "token", "cobalt"),
		]);

		const march = (granularity: string) => ({
			tenant: tenant.id,
			from: "2100-03-01T00:00:00.000Z",
			to: "2100-04-01T00:00:00.000Z",
			granularity,
		});
		const acmeLate = adjustment(booked, FEB, "tokens", "token", 500_000n, 1, "acme");
		const betaLate = [
			adjustment(booked, FEB, "storage", "GB", 1_250_000n, 1, "beta"),
			adjustment(booked, FEB, "tokens", "token", 100_001n, 2, "beta"),
		];
		const marchItems = [
			item(booked, "tokens", "token", 4_000_000n, 1, "acme"),
			item(booked, "tokens", "token", 1_000_000n, 1, "cobalt"),
		];
		const expectReports = async () => {
			expect(await usageReport(tenant, `${MARCH}&granularity=month&groupBy=customer`)).toEqual({
				...march("month"),
				groupBy: "customer",
				items: marchItems,
				adjustments: [acmeLate, ...betaLate],
				nextCursor: null,
			});
			// A day report books the adjustments on the month's first day, where they were booked.
			expect(await usageReport(tenant, `${MARCH}&granularity=day&groupBy=customer`)).toEqual({
				...march("day"),
				groupBy: "customer",
				items: [
					item("2100-03-02T00:00:00.000Z", "tokens", "token", 4_000_000n, 1, "acme"),
					item("2100-03-19T00:00:00.000Z", "tokens", "token", 1_000_000n, 1, "cobalt"),
				],
				adjustments: [acmeLate, ...betaLate],
				nextCursor: null,
			});
			const strip = ({ customerId: _, ...rest }: { customerId?: string | null }) => rest;
			expect(await usageReport(tenant, `${MARCH}&granularity=month&customerId=beta`)).toEqual({
				...march("month"),
				customerId: "beta",
				items: [],
				adjustments: betaLate.map(strip),
			});
			expect(await usageReport(tenant, `${MARCH}&granularity=month&customerId=acme`)).toEqual({
				...march("month"),
				customerId: "acme",
				items: [marchItems[0]].map(strip),
				adjustments: [strip(acmeLate)],
			});
			// Summed across customers, as before.
			expect(await usageReport(tenant, `${MARCH}&granularity=month`)).toEqual({
				...march("month"),
				items: [item(booked, "tokens", "token", 5_000_000n, 2)],
				adjustments: [
					adjustment(booked, FEB, "storage", "GB", 1_250_000n, 1),
					adjustment(booked, FEB, "tokens", "token", 600_001n, 3),
				],
			});
			// One customer a page: each brings its own adjustments, beta (adjustments only) included.
			const pages = await allPages(tenant, `${MARCH}&granularity=month`, 1);
			expect(pages.map((page) => ({ items: page.items, adjustments: page.adjustments, last: page.nextCursor === null }))).toEqual([
				{ items: [marchItems[0]], adjustments: [acmeLate], last: false },
				{ items: [], adjustments: betaLate, last: false },
				{ items: [marchItems[1]], adjustments: [], last: true },
			]);
			// February stays as it was closed.
			const february: CustomerUsageReport = await usageReport(
				tenant,
				"from=2100-02-01&to=2100-03-01&granularity=month&groupBy=customer",
			);
			expect(february.items).toEqual([
				item("2100-02-01T00:00:00.000Z", "tokens", "token", 3_000_000n, 1, null),
				item("2100-02-01T00:00:00.000Z", "tokens", "token", 1_000_000n, 1, "acme"),
				item("2100-02-01T00:00:00.000Z", "tokens", "token", 2_000_000n, 1, "beta"),
			]);
			expect(february.adjustments).toEqual([]);
		};

		// Pending in the aggregator, then flushed to D1.
		await expectReports();
		expect(await flush(tenant)).toBeGreaterThan(0);
		await expectReports();
	});
});
