// PUT/GET /v1/customers/:id/subscription: the timeline, replacing and ending it, 400s and 409s naming the field, and flat fees prorated by seconds.
import { describe, expect, it } from "vitest";
import { call, createTenant, errorOf, freezeClockAt, getJson, useFrozenClock, type TestTenant } from "../helpers";
import { HOUR } from "../read/meter-helpers";
import { bodyOf, closeVia, createPlan, invoiceOf, subscribe } from "./helpers";

// Each test an hour after the previous one, from 3 December 10:00: time never runs backwards within the file.
let tests = 0;
const clock = useFrozenClock(() => freezeClockAt(Date.UTC(2100, 11, 3, 10) + tests++ * HOUR));

const plan = (key: string, currency = "USD", flatFee = "10", interval = "month") => ({ key, currency, interval, flatFee, rateCards: [] });
const at = (day: string) => `2100-${day}T00:00:00.000Z`;
const segment = (key: string, version: number, startAt: string, endAt: string | null) => ({ plan: key, version, startAt, endAt });

async function withPlans(): Promise<TestTenant> {
	const tenant = await createTenant();
	await createPlan(tenant, plan("basic"));
	await createPlan(tenant, plan("basic", "USD", "12"));
	await createPlan(tenant, plan("pro", "USD", "49"));
	await createPlan(tenant, plan("euro", "EUR"));
	return tenant;
}

const subscription = (tenant: TestTenant, customer: string) => getJson(`/v1/customers/${customer}/subscription`, tenant.readKey);

/** A refused PUT's status and details. */
async function refusal(response: Response): Promise<[number, unknown]> {
	return [response.status, (await errorOf(response)).details];
}

describe("PUT and GET /v1/customers/:id/subscription", () => {
	it("puts a customer on the latest version by default or on the version named, and shows the timeline", async () => {
		const tenant = await withPlans();
		const latest = {
			customerId: "acme",
			current: segment("basic", 2, at("11-01"), null),
			timeline: [segment("basic", 2, at("11-01"), null)],
		};
		expect(await bodyOf(await subscribe(tenant, "acme", { plan: "basic", startAt: "2100-11-01" }))).toEqual({
			status: 200,
			body: latest,
		});
		expect(await subscription(tenant, "acme")).toEqual(latest);

		const pinned = {
			customerId: "bolt",
			current: segment("basic", 1, at("11-01"), null),
			timeline: [segment("basic", 1, at("11-01"), null)],
		};
		expect(await bodyOf(await subscribe(tenant, "bolt", { plan: "basic", version: 1, startAt: "2100-11-01T00:00:00Z" }))).toEqual({
			status: 200,
			body: pinned,
		});
		expect(await subscription(tenant, "bolt")).toEqual(pinned);
		// Without startAt, the plan starts at the current whole hour.
		freezeClockAt(clock.start + 59 * 60_000);
		const hour = new Date(clock.start).toISOString();
		const now = { customerId: "cora", current: segment("pro", 1, hour, null), timeline: [segment("pro", 1, hour, null)] };
		expect(await bodyOf(await subscribe(tenant, "cora", { plan: "pro" }))).toEqual({ status: 200, body: now });
	});

	it("replaces every row from an earlier startAt on, and ends the subscription with plan null", async () => {
		const tenant = await withPlans();
		for (const [key, startAt] of [
			["basic", "2100-10-01"],
			["pro", "2100-11-10"],
			["basic", "2100-11-20"],
		] as const)
			expect((await subscribe(tenant, "acme", { plan: key, startAt })).status).toBe(200);
		expect(await subscription(tenant, "acme")).toEqual({
			customerId: "acme",
			current: segment("basic", 2, at("11-20"), null),
			timeline: [
				segment("basic", 2, at("10-01"), at("11-10")),
				segment("pro", 1, at("11-10"), at("11-20")),
				segment("basic", 2, at("11-20"), null),
			],
		});
		// An earlier start replaces both later rows.
		expect((await subscribe(tenant, "acme", { plan: "pro", startAt: "2100-11-05T06:00:00Z" })).status).toBe(200);
		const replaced = [
			segment("basic", 2, at("10-01"), "2100-11-05T06:00:00.000Z"),
			segment("pro", 1, "2100-11-05T06:00:00.000Z", null),
		];
		expect(await subscription(tenant, "acme")).toEqual({ customerId: "acme", current: replaced[1], timeline: replaced });

		const ended = [replaced[0], segment("pro", 1, "2100-11-05T06:00:00.000Z", at("11-25"))];
		expect(await bodyOf(await subscribe(tenant, "acme", { plan: null, startAt: "2100-11-25" }))).toEqual({
			status: 200,
			body: { customerId: "acme", current: null, timeline: ended },
		});
		expect(await subscription(tenant, "acme")).toEqual({ customerId: "acme", current: null, timeline: ended });
	});

	it("refuses a bad startAt, plan, version or field with 400 naming it, and writes nothing", async () => {
		const tenant = await withPlans();
		expect(await refusal(await subscribe(tenant, "acme", { plan: "basic", startAt: "2100-11-01T00:30:00Z" }))).toEqual([
			400,
			[{ path: "startAt", message: "must be a whole UTC hour (usage is kept per hour)" }],
		]);
		expect(await refusal(await subscribe(tenant, "acme", { plan: "basic", startAt: "the first" }))).toEqual([
			400,
			[{ path: "startAt", message: "must be an ISO 8601 date or date-time" }],
		]);
		expect(await refusal(await subscribe(tenant, "acme", { plan: "nope", startAt: "2100-11-01" }))).toEqual([
			400,
			[{ path: "plan", message: "no plan nope" }],
		]);
		expect(await refusal(await subscribe(tenant, "acme", { plan: "basic", version: 9, startAt: "2100-11-01" }))).toEqual([
			400,
			[{ path: "version", message: "plan basic has no version 9" }],
		]);
		expect(await refusal(await subscribe(tenant, "acme", { plan: "basic", startAt: "2100-11-01", trial: true }))).toEqual([
			400,
			[{ path: "trial", message: "unknown field" }],
		]);
		expect(await refusal(await subscribe(tenant, "acme", { plan: null, version: 1 }))).toEqual([
			400,
			[{ path: "version", message: "cannot be given with plan null" }],
		]);
		expect(await bodyOf(await call("/v1/customers/acme/subscription", { key: tenant.readKey }))).toEqual({
			status: 404,
			body: { error: { code: "not_found", message: "Customer acme has no subscription" } },
		});
	});

	it("answers 409 for a start in or before a closed month, and changes nothing", async () => {
		const tenant = await withPlans();
		expect((await subscribe(tenant, "acme", { plan: "basic", startAt: "2100-10-01" })).status).toBe(200);
		const before = await subscription(tenant, "acme");
		expect((await closeVia("2100-11", tenant.readKey)).status).toBe(200);
		for (const startAt of ["2100-11-15", "2100-10-01"]) {
			const response = await subscribe(tenant, "acme", { plan: "pro", startAt });
			expect(await bodyOf(response)).toEqual({
				status: 409,
				body: {
					error: {
						code: "conflict",
						message: `${startAt.slice(0, 7)} or a later month is closed; a subscription cannot change a closed month`,
						details: [{ path: "startAt", message: "is in or before a closed month" }],
					},
				},
			});
		}
		expect((await subscribe(tenant, "bolt", { plan: "pro", startAt: "2100-11-15" })).status).toBe(409);
		expect(await subscription(tenant, "acme")).toEqual(before);
		expect((await call("/v1/customers/bolt/subscription", { key: tenant.readKey })).status).toBe(404);
		// December is still open.
		expect((await subscribe(tenant, "acme", { plan: "pro", startAt: "2100-12-01" })).status).toBe(200);
	});

	it("refuses a change of currency inside a month with 409 naming startAt, and allows it on the 1st", async () => {
		const tenant = await withPlans();
		expect((await subscribe(tenant, "acme", { plan: "basic", startAt: "2100-11-01" })).status).toBe(200);
		expect(await bodyOf(await subscribe(tenant, "acme", { plan: "euro", startAt: "2100-11-15" }))).toEqual({
			status: 409,
			body: {
				error: {
					code: "conflict",
					message: "A change inside a month keeps its currency (USD); start the new plan on the 1st",
					details: [{ path: "startAt", message: "changes the currency inside a month" }],
				},
			},
		});
		// A gap does not reset the month's currency: a USD stretch, an end, then EUR in the same month is refused too.
		expect((await subscribe(tenant, "bolt", { plan: "basic", startAt: "2100-11-01" })).status).toBe(200);
		expect((await subscribe(tenant, "bolt", { plan: null, startAt: "2100-11-11" })).status).toBe(200);
		expect((await subscribe(tenant, "bolt", { plan: "euro", startAt: "2100-11-21" })).status).toBe(409);
		// Within one currency a change in mid-month is fine.
		expect((await subscribe(tenant, "acme", { plan: "pro", startAt: "2100-11-15" })).status).toBe(200);
		expect(await bodyOf(await subscribe(tenant, "acme", { plan: "euro", startAt: "2100-12-01" }))).toEqual({
			status: 200,
			body: {
				customerId: "acme",
				current: segment("euro", 1, at("12-01"), null),
				timeline: [
					segment("basic", 2, at("11-01"), at("11-15")),
					segment("pro", 1, at("11-15"), at("12-01")),
					segment("euro", 1, at("12-01"), null),
				],
			},
		});
	});
});

describe("flat fees prorated by seconds", () => {
	it("bills a monthly fee of 30 from 11 November at exactly 20.00 for November", async () => {
		const tenant = await createTenant();
		await createPlan(tenant, plan("monthly", "USD", "30"));
		expect((await subscribe(tenant, "acme", { plan: "monthly", startAt: "2100-11-11T00:00Z" })).status).toBe(200);
		expect(await invoiceOf(tenant, "acme", "2100-11")).toEqual({
			tenant: tenant.id,
			customerId: "acme",
			period: "2100-11",
			status: "draft",
			currency: "USD",
			from: at("11-01"),
			to: at("12-01"),
			subscriptions: [{ plan: "monthly", version: 1, from: at("11-11"), to: at("12-01") }],
			lines: [
				{
					type: "flat_fee",
					plan: "monthly",
					version: 1,
					from: at("11-11"),
					to: at("12-01"),
					description: "monthly (monthly fee)",
					flatFee: "30",
					proration: { seconds: 20 * 86_400, intervalSeconds: 30 * 86_400 },
					amount: 2000,
					amountDecimal: "20.00",
				},
			],
			subtotal: 2000,
			subtotalDecimal: "20.00",
			total: 2000,
			totalDecimal: "20.00",
		});
	});

	it("bills a yearly fee of 365 at 30.00 for November 2100: its 30 days of the 365-day calendar year", async () => {
		const tenant = await createTenant();
		await createPlan(tenant, plan("yearly", "USD", "365", "year"));
		expect((await subscribe(tenant, "acme", { plan: "yearly", startAt: "2100-01-01" })).status).toBe(200);
		const invoice = await invoiceOf(tenant, "acme", "2100-11");
		expect([invoice.lines, invoice.totalDecimal]).toEqual([
			[
				{
					type: "flat_fee",
					plan: "yearly",
					version: 1,
					from: at("11-01"),
					to: at("12-01"),
					description: "yearly (yearly fee)",
					flatFee: "365",
					// 2100 is not a leap year: 365 days.
					proration: { seconds: 30 * 86_400, intervalSeconds: 365 * 86_400 },
					amount: 3000,
					amountDecimal: "30.00",
				},
			],
			"30.00",
		]);
	});
});
