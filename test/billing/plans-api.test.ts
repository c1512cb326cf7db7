// POST/GET /v1/plans and GET /v1/plans/:key: versions, the exact body, 400s naming the field with nothing written, keys, and pricing frozen per version.
import { describe, expect, it } from "vitest";
import { call, createTenant, errorOf, freezeClockAt, getJson, postJson, useFrozenClock, type TestTenant } from "../helpers";
import { createMeter, deleteMeter, HOUR, ingestDirect, iso } from "../read/meter-helpers";
import { bodyOf, createPlan, invoiceOf, subscribe } from "./helpers";

const NOV = Date.UTC(2100, 10, 1);

// Each test an hour after the previous one, from 3 December 10:00: time never runs backwards within the file.
let tests = 0;
const clock = useFrozenClock(() => freezeClockAt(Date.UTC(2100, 11, 3, 10) + tests++ * HOUR));

const PRO = {
	key: "pro",
	name: "Pro",
	currency: "USD",
	interval: "month",
	flatFee: "49.50",
	rateCards: [
		{ meter: "api_tokens", price: { model: "unit", amount: "0.0015" }, freeQuantity: "1000", minimumAmount: "5" },
		{
			sku: "storage",
			unit: "GB",
			description: "Storage",
			price: {
				model: "graduated",
				tiers: [
					{ upTo: "10", unitAmount: "0.5", flatAmount: "1" },
					{ upTo: null, unitAmount: "0.25" },
				],
			},
		},
	],
};

/** PRO as the API answers it: every default written out, decimals minimal. */
const PRO_SHOWN = {
	key: "pro",
	name: "Pro",
	currency: "USD",
	interval: "month",
	flatFee: "49.5",
	rateCards: [
		{ meter: "api_tokens", price: { model: "unit", amount: "0.0015" }, freeQuantity: "1000", minimumAmount: "5", maximumAmount: null },
		{
			sku: "storage",
			unit: "GB",
			description: "Storage",
			price: {
				model: "graduated",
				tiers: [
					{ upTo: "10", unitAmount: "0.5", flatAmount: "1" },
					{ upTo: null, unitAmount: "0.25", flatAmount: "0" },
				],
			},
			freeQuantity: "0",
			minimumAmount: null,
			maximumAmount: null,
		},
	],
};

async function tenantWithMeter(): Promise<TestTenant> {
	const tenant = await createTenant();
	await createMeter(tenant, { slug: "api_tokens", eventType: "llm_call", aggregation: "SUM", valueProperty: "tokens" });
	return tenant;
}

/** A plan with one rate card, for the meter api_tokens. */
const withCard = (card: Record<string, unknown>) => ({
	key: "bad",
	currency: "USD",
	interval: "month",
	rateCards: [{ meter: "api_tokens", ...card }],
});
const tiered = (tiers: unknown[]) => withCard({ price: { model: "graduated", tiers } });

describe("POST /v1/plans and GET /v1/plans", () => {
	it("creates version 1 with the exact body, a new version per POST, and lists only the newest of each key", async () => {
		const tenant = await tenantWithMeter();
		const first = clock.start;
		expect(await bodyOf(await postJson("/v1/plans", PRO, tenant.readKey))).toEqual({
			status: 201,
			body: { ...PRO_SHOWN, version: 1, createdAt: iso(first) },
		});
		const second = first + 60_000;
		freezeClockAt(second);
		const edited = { ...PRO, flatFee: "59" };
		expect(await bodyOf(await postJson("/v1/plans", edited, tenant.readKey))).toEqual({
			status: 201,
			body: { ...PRO_SHOWN, flatFee: "59", version: 2, createdAt: iso(second) },
		});
		const basic = { key: "basic", currency: "EUR", interval: "year", rateCards: [] };
		await createPlan(tenant, basic);

		const basicShown = {
			key: "basic",
			name: "basic",
			currency: "EUR",
			interval: "year",
			flatFee: "0",
			rateCards: [],
			version: 1,
			createdAt: iso(second),
		};
		expect(await getJson("/v1/plans", tenant.readKey)).toEqual({
			plans: [basicShown, { ...PRO_SHOWN, flatFee: "59", version: 2, createdAt: iso(second) }],
		});
		const versions = [
			{ version: 1, createdAt: iso(first) },
			{ version: 2, createdAt: iso(second) },
		];
		expect(await getJson("/v1/plans/pro", tenant.readKey)).toEqual({
			...PRO_SHOWN,
			flatFee: "59",
			version: 2,
			createdAt: iso(second),
			versions,
		});
		expect(await getJson("/v1/plans/pro?version=1", tenant.readKey)).toEqual({
			...PRO_SHOWN,
			version: 1,
			createdAt: iso(first),
			versions,
		});
		expect(await getJson("/v1/plans/basic", tenant.readKey)).toEqual({
			...basicShown,
			versions: [{ version: 1, createdAt: iso(second) }],
		});
	});

	it("answers 404 for an unknown plan or version, and 400 naming a bad version", async () => {
		const tenant = await tenantWithMeter();
		await createPlan(tenant, PRO);
		expect(await bodyOf(await call("/v1/plans/nope", { key: tenant.readKey }))).toEqual({
			status: 404,
			body: { error: { code: "not_found", message: "No plan nope" } },
		});
		expect(await bodyOf(await call("/v1/plans/pro?version=2", { key: tenant.readKey }))).toEqual({
			status: 404,
			body: { error: { code: "not_found", message: "No version 2 of plan pro" } },
		});
		const zero = await call("/v1/plans/pro?version=0", { key: tenant.readKey });
		expect(zero.status).toBe(400);
		expect((await errorOf(zero)).details).toEqual([{ path: "version", message: "must be a positive integer" }]);
		expect(await getJson("/v1/plans", tenant.readKey)).toEqual({ plans: [{ ...PRO_SHOWN, version: 1, createdAt: iso(clock.start) }] });
	});

	describe("refuses a bad plan with 400 naming the field, and writes nothing", () => {
		const cases: [string, unknown, { path: string; message: string }[]][] = [
			[
				"an unknown currency",
				{ ...PRO, currency: "XYZ" },
				[{ path: "currency", message: "unknown currency XYZ; an ISO 4217 code such as USD" }],
			],
			[
				"unsorted tiers",
				tiered([
					{ upTo: "100", unitAmount: "0.1" },
					{ upTo: "10", unitAmount: "0.05" },
					{ upTo: null, unitAmount: "0.01" },
				]),
				[{ path: "rateCards[0].price.tiers[1].upTo", message: "must be greater than the tier before's (100)" }],
			],
			[
				"overlapping tiers (an equal upTo)",
				tiered([
					{ upTo: "10", unitAmount: "0.1" },
					{ upTo: "10", unitAmount: "0.05" },
					{ upTo: null, unitAmount: "0.01" },
				]),
				[{ path: "rateCards[0].price.tiers[1].upTo", message: "must be greater than the tier before's (10)" }],
			],
			[
				"a negative price",
				withCard({ price: { model: "unit", amount: "-1" } }),
				[{ path: "rateCards[0].price.amount", message: "must not be negative" }],
			],
			[
				"a price sent as a JSON number",
				withCard({ price: { model: "unit", amount: 0.5 } }),
				[
					{
						path: "rateCards[0].price.amount",
						message:
							'must be a decimal string such as "0.0015", not a JSON number, which cannot carry 12 fraction digits exactly',
					},
				],
			],
			[
				"a rate card for an unknown meter",
				{ ...PRO, rateCards: [{ meter: "nope", price: { model: "unit", amount: "1" } }] },
				[{ path: "rateCards[0].meter", message: "no meter named nope" }],
			],
		];
		for (const [what, plan, details] of cases) {
			it(`refuses ${what}`, async () => {
				const tenant = await tenantWithMeter();
				const response = await postJson("/v1/plans", plan, tenant.readKey);
				expect(response.status).toBe(400);
				const error = await errorOf(response);
				expect([error.code, error.details]).toEqual(["invalid_request", details]);
				expect(await getJson("/v1/plans", tenant.readKey)).toEqual({ plans: [] });
			});
		}

		it("refuses a rate card for a deleted meter's slug", async () => {
			const tenant = await tenantWithMeter();
			await deleteMeter(tenant, "api_tokens");
			const response = await postJson("/v1/plans", withCard({ price: { model: "unit", amount: "1" } }), tenant.readKey);
			expect([response.status, (await errorOf(response)).details]).toEqual([
				400,
				[{ path: "rateCards[0].meter", message: "no meter named api_tokens" }],
			]);
			expect(await getJson("/v1/plans", tenant.readKey)).toEqual({ plans: [] });
		});

		it("refuses a body that is not JSON: 400 when it claims to be, 415 when it does not", async () => {
			const tenant = await tenantWithMeter();
			expect(await bodyOf(await call("/v1/plans", { method: "POST", body: "{not json", key: tenant.readKey }))).toEqual({
				status: 400,
				body: {
					error: {
						code: "invalid_request",
						message: "Request body is not valid JSON",
						details: [{ path: "body", message: "invalid JSON" }],
					},
				},
			});
			const plain = await call("/v1/plans", {
				method: "POST",
				body: JSON.stringify(PRO),
				key: tenant.readKey,
				headers: { "content-type": "text/plain" },
			});
			expect(await bodyOf(plain)).toEqual({
				status: 415,
				body: { error: { code: "unsupported_media_type", message: "Content-Type must be application/json" } },
			});
			expect(await getJson("/v1/plans", tenant.readKey)).toEqual({ plans: [] });
		});
	});

	it("answers 403 to a write key and 401 without a key, on every plan route", async () => {
		const tenant = await tenantWithMeter();
		await createPlan(tenant, PRO);
		const forbidden = { error: { code: "forbidden", message: "A write key cannot use this route" } };
		const missing = { error: { code: "unauthorized", message: "Missing bearer key" } };
		expect(await bodyOf(await postJson("/v1/plans", { ...PRO, flatFee: "1" }, tenant.writeKey))).toEqual({
			status: 403,
			body: forbidden,
		});
		expect(await bodyOf(await call("/v1/plans", { key: tenant.writeKey }))).toEqual({ status: 403, body: forbidden });
		expect(await bodyOf(await call("/v1/plans/pro", { key: tenant.writeKey }))).toEqual({ status: 403, body: forbidden });
		expect(await bodyOf(await postJson("/v1/plans", { ...PRO, flatFee: "1" }))).toEqual({ status: 401, body: missing });
		expect(await bodyOf(await call("/v1/plans"))).toEqual({ status: 401, body: missing });
		expect(await bodyOf(await call("/v1/plans/pro"))).toEqual({ status: 401, body: missing });
		// Neither refused POST wrote a version.
		expect((await getJson<{ versions: unknown[] }>("/v1/plans/pro", tenant.readKey)).versions).toEqual([
			{ version: 1, createdAt: iso(clock.start) },
		]);
	});

	it("does not reprice a customer on version 1 when version 2 changes the price", async () => {
		const tenant = await createTenant();
		const plan = (amount: string) => ({
			key: "metered",
			currency: "USD",
			interval: "month",
			rateCards: [{ sku: "calls", price: { model: "unit", amount } }],
		});
		await createPlan(tenant, plan("0.01"));
		expect((await subscribe(tenant, "old", { plan: "metered", startAt: "2100-11-01" })).status).toBe(200);
		expect(await createPlan(tenant, plan("0.02"))).toMatchObject({ version: 2 });
		expect((await subscribe(tenant, "new", { plan: "metered", startAt: "2100-11-01" })).status).toBe(200);
		const events = ["old", "new"].map((customerId, i) => ({
			id: `reprice-${i}`,
			event: "metered",
			timestamp: NOV + 5 * 86_400_000,
			customerId,
			usage: { sku: "calls", quantity: 1234 },
		}));
		expect(await ingestDirect(tenant, events)).toBe(2);

		const old = await invoiceOf(tenant, "old", "2100-11");
		const now = await invoiceOf(tenant, "new", "2100-11");
		expect([old.lines.map((l) => [l.version, l.unitAmount, l.amountExact]), old.total, old.totalDecimal]).toEqual([
			[[1, "0.01", "12.34"]],
			1234,
			"12.34",
		]);
		expect([now.lines.map((l) => [l.version, l.unitAmount, l.amountExact]), now.total, now.totalDecimal]).toEqual([
			[[2, "0.02", "24.68"]],
			2468,
			"24.68",
		]);
	});
});
