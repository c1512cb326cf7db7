// End to end through the real local queue: three customers on two plans (one switching plans in
// mid-month), their November invoices against a ledger computed here to the cent, a duplicate that
// changes nothing, paging, and a close that freezes the month while late events go to December.
import { describe, expect, it } from "vitest";
import { createTenant, getJson, type TestTenant } from "../helpers";
import { createMeter, flush, postEvents, untilConsumed, type WireEvent } from "../read/meter-helpers";
import { closeVia, createPlan, invoiceOf, subscribe, type InvoiceAnswer } from "./helpers";
import { useFrozenClock, freezeClockAt } from "../helpers";

const DAY = 86_400_000;
const NOV = Date.UTC(2100, 10, 1);
const SWITCH = Date.UTC(2100, 10, 16);
const DEC = Date.UTC(2100, 11, 1);

useFrozenClock(() => freezeClockAt(Date.UTC(2100, 11, 3, 10)));

const STARTER = {
	key: "starter",
	currency: "USD",
	interval: "month",
	flatFee: "10",
	rateCards: [
		{
			meter: "api_tokens",
			price: {
				model: "graduated",
				tiers: [
					{ upTo: "1000", unitAmount: "0.002", flatAmount: "1" },
					{ upTo: "10000", unitAmount: "0.0015" },
					{ upTo: null, unitAmount: "0.001" },
				],
			},
		},
		{ sku: "storage", price: { model: "unit", amount: "0.25" }, freeQuantity: "10" },
	],
};
const PRO = {
	key: "pro",
	currency: "USD",
	interval: "month",
	flatFee: "49",
	rateCards: [
		{
			meter: "api_tokens",
			price: {
				model: "volume",
				tiers: [
					{ upTo: "5000", unitAmount: "0.001" },
					{ upTo: null, unitAmount: "0.0008" },
				],
			},
			minimumAmount: "5",
		},
		{ sku: "emails", price: { model: "package", amount: "2", quantityPerPackage: "1000" } },
		{ sku: "storage", price: { model: "unit", amount: "0.2" } },
	],
};

// ---- The ledger: amounts in 10^-18 dollars, hand-written per plan, independent of src/ ----
const E = 10n ** 18n;
/** Dollars (a decimal string) in 10^-18. */
const d = (text: string) => {
	const [whole, fraction = ""] = text.split(".");
	return BigInt(whole!) * E + BigInt(fraction.padEnd(18, "0"));
};
/** Units (micro-units in) × a unit price in dollars, in 10^-18. */
const times = (micros: bigint, price: string) => (micros * d(price)) / 1_000_000n;
const cents = (amount: bigint, divisor = 1n) => {
	const scale = 10n ** 16n * divisor;
	const floor = amount / scale;
	const rest = amount - floor * scale;
	return floor + (rest * 2n > scale || (rest * 2n === scale && floor % 2n === 1n) ? 1n : 0n);
};
const U = 1_000_000n;
const starterTokens = (q: bigint) =>
	d("1") +
	times(q < 1000n * U ? q : 1000n * U, "0.002") +
	(q > 1000n * U ? times((q < 10000n * U ? q : 10000n * U) - 1000n * U, "0.0015") : 0n) +
	(q > 10000n * U ? times(q - 10000n * U, "0.001") : 0n);
const starterStorage = (q: bigint) => times(q > 10n * U ? q - 10n * U : 0n, "0.25");
const proTokens = (q: bigint) => {
	const amount = times(q, q <= 5000n * U ? "0.001" : "0.0008");
	return amount < d("5") ? d("5") : amount;
};
const proEmails = (q: bigint) => d("2") * ((q + 1000n * U - 1n) / (1000n * U));
const proStorage = (q: bigint) => times(q, "0.2");

interface Usage {
	tokens: bigint;
	storage: bigint;
	emails: bigint;
}
const sumOf = (events: WireEvent[], from: number, to: number): Usage => {
	const inRange = events.filter((e) => e.timestamp >= from && e.timestamp < to);
	const micros = (value: number) => BigInt(Math.round(value * 1_000_000));
	return {
		tokens: inRange.reduce((s, e) => s + (e.event === "llm_call" ? micros(e.properties!.tokens as number) : 0n), 0n),
		storage: inRange.reduce((s, e) => s + (e.usage?.sku === "storage" ? micros(e.usage.quantity) : 0n), 0n),
		emails: inRange.reduce((s, e) => s + (e.usage?.sku === "emails" ? micros(e.usage.quantity) : 0n), 0n),
	};
};
/** A whole month's or a prorated share's flat fee, and the usage lines, each rounded once. */
const starterCents = (u: Usage, share: [bigint, bigint] = [1n, 1n]) =>
	cents(d("10") * share[0], share[1]) + cents(starterTokens(u.tokens)) + cents(starterStorage(u.storage));
const proCents = (u: Usage, share: [bigint, bigint] = [1n, 1n]) =>
	cents(d("49") * share[0], share[1]) + cents(proTokens(u.tokens)) + cents(proEmails(u.emails)) + cents(proStorage(u.storage));

// ---- The events: deterministic, spread over November ----
let serial = 0;
const call = (customerId: string, at: number, tokens: number): WireEvent => ({
	id: `e2e-${serial++}`,
	event: "llm_call",
	timestamp: at,
	customerId,
	properties: { tokens },
});
const usage = (customerId: string, at: number, sku: string, quantity: number): WireEvent => ({
	id: `e2e-${serial++}`,
	event: "metered",
	timestamp: at,
	customerId,
	usage: { sku, quantity },
});

function novemberEvents(): WireEvent[] {
	const events: WireEvent[] = [];
	for (let i = 0; i < 12; i++) events.push(call("acme", NOV + i * 2 * DAY + 3_600_000, 1000.5));
	for (let i = 0; i < 5; i++) events.push(usage("acme", NOV + i * DAY, "storage", 3.5));
	for (let i = 0; i < 6; i++) events.push(call("bolt", NOV + i * DAY, 500)); // before the switch
	for (let i = 0; i < 6; i++) events.push(call("bolt", SWITCH + i * DAY, 1000)); // after it
	events.push(usage("bolt", NOV + 2 * DAY, "storage", 20), usage("bolt", SWITCH + DAY, "storage", 5));
	events.push(usage("bolt", SWITCH + 2 * DAY, "emails", 2500));
	events.push(call("cora", NOV + 9 * DAY, 4000.25), usage("cora", NOV + 10 * DAY, "emails", 1000));
	// Dave has usage but no subscription: no invoice.
	events.push(call("dave", NOV + DAY, 99));
	return events;
}

async function setUp(): Promise<{ tenant: TestTenant; events: WireEvent[] }> {
	const tenant = await createTenant();
	await createMeter(tenant, { slug: "api_tokens", eventType: "llm_call", aggregation: "SUM", valueProperty: "tokens" });
	await createPlan(tenant, STARTER);
	await createPlan(tenant, PRO);
	for (const [customer, plan, startAt] of [
		["acme", "starter", "2100-11-01"],
		["bolt", "starter", "2100-11-01"],
		["bolt", "pro", "2100-11-16T00:00:00Z"],
		["cora", "pro", "2100-10-01"],
	] as const) {
		expect((await subscribe(tenant, customer, { plan, startAt })).status).toBe(200);
	}
	const events = novemberEvents();
	await postEvents(tenant, events);
	// A duplicate of the first event, resent: it must change nothing.
	await postEvents(tenant, [events[0]!]);
	await untilConsumed(tenant, events.length + 1);
	await flush(tenant);
	return { tenant, events };
}

describe("invoices end to end", () => {
	it(
		"bills three customers on two plans exactly as the ledger says, a duplicate once, and freezes the month at close",
		{ timeout: 60_000 },
		async () => {
			const { tenant, events } = await setUp();
			const half: [bigint, bigint] = [15n, 30n];
			const expected = {
				acme: starterCents(
					sumOf(
						events.filter((e) => e.customerId === "acme"),
						NOV,
						DEC,
					),
				),
				bolt:
					starterCents(
						sumOf(
							events.filter((e) => e.customerId === "bolt"),
							NOV,
							SWITCH,
						),
						half,
					) +
					proCents(
						sumOf(
							events.filter((e) => e.customerId === "bolt"),
							SWITCH,
							DEC,
						),
						half,
					),
				cora: proCents(
					sumOf(
						events.filter((e) => e.customerId === "cora"),
						NOV,
						DEC,
					),
				),
			};
			// The hand check of the ledger itself: 10 + 18.51 + 1.88; 5 + 6 + 2.50 + 24.50 + 5 + 6 + 1; 49 + 5 + 2 + 0.
			expect(expected).toEqual({ acme: 3039n, bolt: 5000n, cora: 5600n });

			for (const customer of ["acme", "bolt", "cora"] as const) {
				const invoice = await invoiceOf(tenant, customer, "2100-11");
				expect([invoice.status, invoice.currency, invoice.total, invoice.subtotal]).toEqual([
					"draft",
					"USD",
					Number(expected[customer]),
					Number(expected[customer]),
				]);
			}
			const acme = await invoiceOf(tenant, "acme", "2100-11");
			expect(acme.totalDecimal).toBe("30.39");
			expect(acme.lines.map((line) => [line.type, line.description, line.quantity ?? null, line.amountDecimal])).toEqual([
				["flat_fee", "starter (monthly fee)", null, "10.00"],
				["usage", "api_tokens", "12006", "18.51"],
				["usage", "storage", "17.5", "1.88"],
			]);
			expect(acme.lines[1]!.children).toEqual([
				{
					type: "tier",
					tier: 1,
					from: "0",
					upTo: "1000",
					quantity: "1000",
					unitAmount: "0.002",
					flatAmount: "1",
					amountExact: "3",
				},
				{
					type: "tier",
					tier: 2,
					from: "1000",
					upTo: "10000",
					quantity: "9000",
					unitAmount: "0.0015",
					flatAmount: "0",
					amountExact: "13.5",
				},
				{
					type: "tier",
					tier: 3,
					from: "10000",
					upTo: null,
					quantity: "2006",
					unitAmount: "0.001",
					flatAmount: "0",
					amountExact: "2.006",
				},
			]);

			// Every subscribed customer's invoice, in pages; dave has none.
			const first = await getJson<{ invoices: InvoiceAnswer[]; nextCursor: string | null }>(
				"/v1/invoices?period=2100-11&limit=2",
				tenant.readKey,
			);
			expect(first.invoices.map((i) => [i.customerId, i.total])).toEqual([
				["acme", 3039],
				["bolt", 5000],
			]);
			const second = await getJson<{ invoices: InvoiceAnswer[]; nextCursor: string | null }>(
				`/v1/invoices?period=2100-11&limit=2&cursor=${first.nextCursor}`,
				tenant.readKey,
			);
			expect([second.invoices.map((i) => [i.customerId, i.total]), second.nextCursor]).toEqual([[["cora", 5600]], null]);

			// Closing freezes November: late November events are booked into December instead.
			const closed = await closeVia("2100-11", tenant.readKey);
			expect(((await closed.json()) as { invoices: unknown }).invoices).toEqual({ stored: 3, complete: true });
			const frozen = await invoiceOf(tenant, "acme", "2100-11");
			expect([frozen.status, frozen.total, frozen.frozenAt]).toEqual(["final", 3039, "2100-12-03T10:00:00.000Z"]);
			await postEvents(tenant, [call("acme", NOV + 20 * DAY, 500), usage("acme", NOV + 20 * DAY, "storage", 4)]);
			await untilConsumed(tenant, events.length + 3);
			await flush(tenant);
			expect(await invoiceOf(tenant, "acme", "2100-11")).toEqual(frozen);
			// December so far: the flat fee, 500 late tokens (2.00 with tier 1's flat 1), 4 GB inside the free 10.
			const december = await invoiceOf(tenant, "acme", "current");
			expect([december.period, december.status, december.totalDecimal]).toEqual(["2100-12", "preview", "12.00"]);
			expect(december.lines.map((line) => [line.description, line.quantity ?? null])).toEqual([
				["starter (monthly fee)", null],
				["api_tokens", "500"],
				["storage", "4"],
			]);
			// And a subscription change cannot reach into the closed month.
			expect((await subscribe(tenant, "acme", { plan: "pro", startAt: "2100-11-20" })).status).toBe(409);
		},
	);
});
