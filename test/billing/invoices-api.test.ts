// GET /v1/customers/:id/invoice and GET /v1/invoices: CSV, period and query errors, exact amounts and rounding, paging, and stored invoices of a closed period.
import { describe, expect, it } from "vitest";
import { call, createTenant, errorOf, freezeClockAt, getJson, useFrozenClock, type TestTenant } from "../helpers";
import { HOUR, ingestDirect, iso, type WireEvent } from "../read/meter-helpers";
import { bodyOf, closeVia, createPlan, invoiceOf, subscribe, type InvoiceAnswer } from "./helpers";

const NOV = Date.UTC(2100, 10, 1);
const DAY = 86_400_000;

// Each test an hour after the previous one, from 3 December 10:00: time never runs backwards within the file.
let tests = 0;
const clock = useFrozenClock(() => freezeClockAt(Date.UTC(2100, 11, 3, 10) + tests++ * HOUR));

let serial = 0;
const usage = (customerId: string, sku: string, quantity: number): WireEvent => ({
	id: `inv-${serial++}`,
	event: "metered",
	timestamp: NOV + 3 * DAY,
	customerId,
	usage: { sku, quantity },
});

/** A tenant with one plan, "acme" on it for November, and acme's usage fed to the aggregator. */
async function billed(rateCards: unknown[], events: [sku: string, quantity: number][], flatFee = "0"): Promise<TestTenant> {
	const tenant = await createTenant();
	await createPlan(tenant, { key: "plan", currency: "USD", interval: "month", flatFee, rateCards });
	expect((await subscribe(tenant, "acme", { plan: "plan", startAt: "2100-11-01" })).status).toBe(200);
	if (events.length > 0)
		expect(
			await ingestDirect(
				tenant,
				events.map(([sku, quantity]) => usage("acme", sku, quantity)),
			),
		).toBe(events.length);
	return tenant;
}

const unit = (sku: string, amount: string, extra: Record<string, unknown> = {}) => ({ sku, price: { model: "unit", amount }, ...extra });
const at = (day: string) => `2100-${day}T00:00:00.000Z`;
/** The fields every usage line of the November plan shares. */
const usageLine = { type: "usage", plan: "plan", version: 1, from: at("11-01"), to: at("12-01") };
const amountsOf = (invoice: InvoiceAnswer) => invoice.lines.map((line) => [line.sku, line.amountExact, line.amountDecimal]);

describe("GET /v1/customers/:id/invoice", () => {
	it("answers the invoice as CSV: a row per line and child line, then the total", async () => {
		const tenant = await billed(
			[
				unit("storage", "0.25", { description: "Storage, GB", freeQuantity: "10" }),
				{
					sku: "calls",
					price: {
						model: "graduated",
						tiers: [
							{ upTo: "100", unitAmount: "0.01", flatAmount: "1" },
							{ upTo: null, unitAmount: "0.005" },
						],
					},
				},
			],
			[
				["storage", 17.5],
				["calls", 150],
			],
			"10",
		);
		const response = await call("/v1/customers/acme/invoice?period=2100-11", { key: tenant.readKey, headers: { accept: "text/csv" } });
		expect([response.status, response.headers.get("content-type")]).toEqual([200, "text/csv; charset=utf-8"]);
		expect(await response.text()).toBe(
			[
				"customer_id,period,currency,line,type,description,quantity,unit_amount,amount_exact,amount",
				"acme,2100-11,USD,1,flat_fee,plan (monthly fee),,,,10.00",
				'acme,2100-11,USD,2,usage,"Storage, GB",7.5,0.25,1.875,1.88',
				"acme,2100-11,USD,3,usage,calls,150,,2.25,2.25",
				"acme,2100-11,USD,3.1,tier,tier 1,100,0.01,2,",
				"acme,2100-11,USD,3.2,tier,tier 2,50,0.005,0.25,",
				"acme,2100-11,USD,,total,,,,,14.13",
				"",
			].join("\r\n"),
		);
	});

	it("answers 400 naming period or an unknown parameter, and 404 for an unsubscribed customer", async () => {
		const tenant = await billed([], []);
		const details = async (path: string) => {
			const response = await call(path, { key: tenant.readKey });
			return [response.status, (await errorOf(response)).details];
		};
		const month = [{ path: "period", message: "must be a month (YYYY-MM) or current" }];
		expect(await details("/v1/customers/acme/invoice")).toEqual([
			400,
			[{ path: "period", message: "is required: a month (YYYY-MM) or current" }],
		]);
		expect(await details("/v1/customers/acme/invoice?period=2100-13")).toEqual([400, month]);
		expect(await details("/v1/customers/acme/invoice?period=nov")).toEqual([400, month]);
		expect(await details("/v1/customers/acme/invoice?period=2100-11&currency=EUR")).toEqual([
			400,
			[{ path: "currency", message: "unknown query parameter" }],
		]);
		expect(await details("/v1/invoices?period=nov")).toEqual([400, month]);
		expect(await bodyOf(await call("/v1/customers/dave/invoice?period=2100-11", { key: tenant.readKey }))).toEqual({
			status: 404,
			body: { error: { code: "not_found", message: "Customer dave has no subscription in 2100-11" } },
		});
	});

	it("bills a graduated plan's flat first tier at zero usage, and nothing else", async () => {
		const tiers = [
			{ upTo: "100", unitAmount: "0.01", flatAmount: "5" },
			{ upTo: null, unitAmount: "0.005", flatAmount: "3" },
		];
		const tenant = await billed([{ sku: "calls", price: { model: "graduated", tiers } }], []);
		expect(await invoiceOf(tenant, "acme", "2100-11")).toEqual({
			tenant: tenant.id,
			customerId: "acme",
			period: "2100-11",
			status: "draft",
			currency: "USD",
			from: at("11-01"),
			to: at("12-01"),
			subscriptions: [{ plan: "plan", version: 1, from: at("11-01"), to: at("12-01") }],
			lines: [
				{
					...usageLine,
					sku: "calls",
					description: "calls",
					model: "graduated",
					quantity: "0",
					freeQuantity: "0",
					billableQuantity: "0",
					amountExact: "5",
					amount: 500,
					amountDecimal: "5.00",
					children: [
						{
							type: "tier",
							tier: 1,
							from: "0",
							upTo: "100",
							quantity: "0",
							unitAmount: "0.01",
							flatAmount: "5",
							amountExact: "5",
						},
					],
				},
			],
			subtotal: 500,
			subtotalDecimal: "5.00",
			total: 500,
			totalDecimal: "5.00",
		});
	});

	it("prices with 12 fraction digits exactly and rounds each line once", async () => {
		const tenant = await billed(
			[unit("pings", "0.000000000001"), unit("tokens", "0.000002")],
			[
				["pings", 1_234_567_890],
				["tokens", 1_234_567],
			],
		);
		const invoice = await invoiceOf(tenant, "acme", "2100-11");
		expect(
			invoice.lines.map((line) => [line.sku, line.quantity, line.unitAmount, line.amountExact, line.amount, line.amountDecimal]),
		).toEqual([
			["pings", "1234567890", "0.000000000001", "0.00123456789", 0, "0.00"],
			["tokens", "1234567", "0.000002", "2.469134", 247, "2.47"],
		]);
		expect([invoice.total, invoice.totalDecimal]).toEqual([247, "2.47"]);
	});

	it("shows a minimum and a maximum as child lines with their exact amounts", async () => {
		const tenant = await billed(
			[unit("small", "0.01", { minimumAmount: "5" }), unit("large", "0.5", { maximumAmount: "10" })],
			[
				["small", 100],
				["large", 30],
			],
		);
		const invoice = await invoiceOf(tenant, "acme", "2100-11");
		expect(invoice.lines.map((line) => [line.sku, line.billableQuantity, line.amountExact, line.amountDecimal, line.children])).toEqual(
			[
				["small", "100", "5", "5.00", [{ type: "minimum", amountExact: "4" }]],
				["large", "30", "10", "10.00", [{ type: "maximum", amountExact: "-5" }]],
			],
		);
		expect(invoice.totalDecimal).toBe("15.00");
	});

	it("rounds a line's half cent to the even cent", async () => {
		const tenant = await billed(
			[unit("even", "0.125"), unit("odd", "0.135"), unit("above", "0.1250001")],
			[
				["even", 1],
				["odd", 1],
				["above", 1],
			],
		);
		const invoice = await invoiceOf(tenant, "acme", "2100-11");
		expect(amountsOf(invoice)).toEqual([
			["even", "0.125", "0.12"],
			["odd", "0.135", "0.14"],
			["above", "0.1250001", "0.13"],
		]);
		expect(invoice.totalDecimal).toBe("0.39");
	});
});

interface InvoicePage {
	tenant: string;
	period: string;
	status: string;
	invoices: InvoiceAnswer[];
	nextCursor: string | null;
}

describe("GET /v1/invoices", () => {
	it("pages every subscribed customer's invoice by customer id", async () => {
		const tenant = await createTenant();
		await createPlan(tenant, { key: "plan", currency: "USD", interval: "month", flatFee: "30", rateCards: [] });
		// c3 from 16 November: half the month.
		for (const [customer, startAt] of [
			["c4", "2100-11-01"],
			["c2", "2100-10-01"],
			["c5", "2100-11-01"],
			["c1", "2100-11-01"],
			["c3", "2100-11-16"],
		])
			expect((await subscribe(tenant, customer!, { plan: "plan", startAt })).status).toBe(200);
		const pages: [string, string][][] = [];
		let cursor: string | null = null;
		do {
			const query: string = `/v1/invoices?period=2100-11&limit=2${cursor === null ? "" : `&cursor=${cursor}`}`;
			const page: InvoicePage = await getJson<InvoicePage>(query, tenant.readKey);
			expect([page.tenant, page.period, page.status, typeof page.nextCursor]).toEqual([
				tenant.id,
				"2100-11",
				"draft",
				pages.length < 2 ? "string" : "object",
			]);
			pages.push(page.invoices.map((invoice) => [invoice.customerId, invoice.totalDecimal]));
			cursor = page.nextCursor;
		} while (cursor !== null && pages.length < 5);
		expect(pages).toEqual([
			[
				["c1", "30.00"],
				["c2", "30.00"],
			],
			[
				["c3", "15.00"],
				["c4", "30.00"],
			],
			[["c5", "30.00"]],
		]);
	});

	it("answers 400 naming limit or cursor", async () => {
		const tenant = await billed([], []);
		const details = async (query: string) => {
			const response = await call(`/v1/invoices?period=2100-11&${query}`, { key: tenant.readKey });
			return [response.status, (await errorOf(response)).details];
		};
		expect(await details("limit=1001")).toEqual([400, [{ path: "limit", message: "must be an integer 1-1000" }]]);
		expect(await details("limit=0")).toEqual([400, [{ path: "limit", message: "must be an integer 1-1000" }]]);
		expect(await details("cursor=!!!")).toEqual([400, [{ path: "cursor", message: "must be a nextCursor from a previous page" }]]);
		expect(await details("cursor=bm90IGpzb24")).toEqual([
			400,
			[{ path: "cursor", message: "must be a nextCursor from a previous page" }],
		]);
	});
});

describe("a closed period", () => {
	it("answers the invoices stored at close, final with frozenAt, in both routes", async () => {
		const tenant = await billed([unit("calls", "0.01")], [["calls", 250]], "10");
		const draft = await invoiceOf(tenant, "acme", "2100-11");
		expect([draft.status, draft.totalDecimal, draft.frozenAt]).toEqual(["draft", "12.50", undefined]);
		expect((await closeVia("2100-11", tenant.readKey)).status).toBe(200);
		freezeClockAt(clock.start + HOUR / 2);

		const { tenant: owner, ...body } = draft as InvoiceAnswer & { tenant: string };
		const stored = { ...body, status: "final", frozenAt: iso(clock.start) };
		expect(await invoiceOf(tenant, "acme", "2100-11")).toEqual({ tenant: owner, ...stored });
		expect(await getJson("/v1/invoices?period=2100-11", tenant.readKey)).toEqual({
			tenant: tenant.id,
			period: "2100-11",
			status: "final",
			invoices: [stored],
			nextCursor: null,
		});
	});
});
