// Test keys (ml_wt_, ml_rt_): issued with every tenant and on demand, they authenticate into the
// tenant's test space "<tenant>~test", whose data the live keys never see (nor the reverse), and
// they open no admin route.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { verifyKey } from "../../src/http/auth";
import { listTenantIds } from "../../src/sinks/d1/tenants";
import { ApiError } from "../../src/shared/errors";
import { ADMIN_TOKEN, call, eventsRequest, getJson, ingest, postJson, uniqueTenantId } from "../helpers";
import { createPlan, subscribe } from "../billing/helpers";
import { flush, untilConsumed } from "../read/meter-helpers";
import { expectError, revoke, sha256Hex } from "./helpers";
import { createTenantWithTestSpace } from "./test-space";

const TEST_KEY = /^ml_(w|r)t_[A-Za-z0-9_-]{32}$/;

describe("issuing test keys", () => {
	it("gives every new tenant a test space with a test write key and a test read key", async () => {
		const { live, test } = await createTenantWithTestSpace();
		expect([TEST_KEY.exec(test.writeKey)?.[1], TEST_KEY.exec(test.readKey)?.[1]]).toEqual(["w", "r"]);
		const keys = await env.DB.prepare("SELECT prefix, tenant_id, scope FROM api_keys WHERE tenant_id = ?1 ORDER BY scope")
			.bind(test.id)
			.all();
		expect(keys.results).toEqual([
			{ prefix: test.readKey.slice(0, 14), tenant_id: test.id, scope: "read" },
			{ prefix: test.writeKey.slice(0, 14), tenant_id: test.id, scope: "write" },
		]);
		const space = await env.DB.prepare("SELECT id, name FROM tenants WHERE id = ?1").bind(test.id).first();
		expect(space).toEqual({ id: test.id, name: `${live.id} (test)` });
	});

	it('issues a test key for "test": true, naming the test space it authenticates as', async () => {
		const { live, test } = await createTenantWithTestSpace();
		const response = await postJson(`/v1/admin/tenants/${live.id}/keys`, { scope: "read", test: true }, ADMIN_TOKEN);
		expect(response.status).toBe(201);
		const body = await response.json<{ key: string }>();
		expect(body).toEqual({ tenant: test.id, scope: "read", prefix: body.key.slice(0, 14), key: expect.stringMatching(TEST_KEY) });
		expect(body.key.startsWith("ml_rt_")).toBe(true);
		expect((await getJson<{ tenant: string }>("/v1/usage", body.key)).tenant).toBe(test.id);
	});

	it('issues a live key for "test": false, and refuses a "test" that is not a boolean', async () => {
		const { live } = await createTenantWithTestSpace();
		const response = await postJson(`/v1/admin/tenants/${live.id}/keys`, { scope: "write", test: false }, ADMIN_TOKEN);
		expect(response.status).toBe(201);
		expect((await response.json<{ key: string; tenant: string }>()).tenant).toBe(live.id);
		await expectError(
			await postJson(`/v1/admin/tenants/${live.id}/keys`, { scope: "write", test: "yes" }, ADMIN_TOKEN),
			400,
			"invalid_request",
			[{ path: "test", message: "must be a boolean" }],
		);
	});

	it("answers 404 for a test space addressed by its own id, storing no key", async () => {
		const { test } = await createTenantWithTestSpace();
		for (const body of [{ scope: "write" }, { scope: "read", test: true }]) {
			await expectError(await postJson(`/v1/admin/tenants/${encodeURIComponent(test.id)}/keys`, body, ADMIN_TOKEN), 404, "not_found");
		}
		const row = await env.DB.prepare("SELECT count(*) AS n FROM api_keys WHERE tenant_id LIKE ?1").bind(`${test.id}%`).first();
		expect(row).toEqual({ n: 2 });
	});

	it("creates the test space of a tenant that predates test mode on its first test key", async () => {
		const id = uniqueTenantId();
		await env.DB.prepare("INSERT INTO tenants (id, name, created_at) VALUES (?1, 'Legacy', '2026-01-01T00:00:00.000Z')").bind(id).run();
		const response = await postJson(`/v1/admin/tenants/${id}/keys`, { scope: "write", test: true }, ADMIN_TOKEN);
		expect(response.status).toBe(201);
		const { key } = await response.json<{ key: string }>();
		expect(await env.DB.prepare("SELECT id, name FROM tenants WHERE id = ?1").bind(`${id}~test`).first()).toEqual({
			id: `${id}~test`,
			name: "Legacy (test)",
		});
		const { response: ingested, queue } = await ingest(eventsRequest('{"event":"a"}', key));
		expect(ingested.status).toBe(202);
		expect(queue.messages.map((message) => message.tenant)).toEqual([`${id}~test`]);
	});

	it("answers 404 for an unknown tenant's test key, creating no test space", async () => {
		const id = uniqueTenantId();
		await expectError(await postJson(`/v1/admin/tenants/${id}/keys`, { scope: "write", test: true }, ADMIN_TOKEN), 404, "not_found");
		expect(await env.DB.prepare("SELECT count(*) AS n FROM tenants WHERE id = ?1").bind(`${id}~test`).first()).toEqual({ n: 0 });
	});

	it("revokes a test key by its 14-character prefix, and names that length for a shorter one", async () => {
		const { live } = await createTenantWithTestSpace();
		const response = await postJson(`/v1/admin/tenants/${live.id}/keys`, { scope: "read", test: true }, ADMIN_TOKEN);
		const issued = await response.json<{ key: string; prefix: string }>();
		await expectError(await revoke(issued.prefix.slice(0, 13)), 400, "invalid_request", [
			{ path: "prefix", message: "must be the key's first 14 characters" },
		]);
		const revoked = await revoke(issued.prefix);
		expect(await revoked.json()).toEqual({ revoked: issued.prefix, effectiveWithinMs: 60_000 });
		await expectError(await call("/v1/usage", { key: issued.key }), 401, "unauthorized");
	});
});

describe("authenticating test keys", () => {
	it("sends a test write key's events to the test space's queue messages, and a live key's to the tenant", async () => {
		const { live, test } = await createTenantWithTestSpace();
		const [testSent, liveSent] = [
			await ingest(eventsRequest('{"event":"a"}', test.writeKey)),
			await ingest(eventsRequest('{"event":"a"}', live.writeKey)),
		];
		expect([testSent.response.status, liveSent.response.status]).toEqual([202, 202]);
		expect(testSent.queue.messages.map((message) => message.tenant)).toEqual([test.id]);
		expect(liveSent.queue.messages.map((message) => message.tenant)).toEqual([live.id]);
	});

	it("refuses a key whose prefix says live for a test space, or test for a live tenant", async () => {
		const { live, test } = await createTenantWithTestSpace();
		// Issuance never stores such rows: they are written here to check the rule on its own.
		const random = () => crypto.randomUUID().replace(/-/g, "");
		for (const [key, tenant, length] of [
			[`ml_w_${random()}`, test.id, 13],
			[`ml_wt_${random()}`, live.id, 14],
		] as const) {
			await env.DB.prepare(
				"INSERT INTO api_keys (key_hash, prefix, tenant_id, scope, created_at) VALUES (?1, ?2, ?3, 'write', '2026-01-01')",
			)
				.bind(await sha256Hex(key), key.slice(0, length), tenant)
				.run();
			await expect(verifyKey(env, key, ["write"])).rejects.toEqual(new ApiError(401, "Unknown or revoked key"));
		}
	});

	it("keeps each key's scope: a test write key cannot read, a test read key cannot ingest", async () => {
		const { test } = await createTenantWithTestSpace();
		for (const path of ["/v1/usage", "/v1/invoices?period=current", "/v1/meters", "/v1/settings/cors"])
			await expectError(await call(path, { key: test.writeKey }), 403, "forbidden");
		const { response, queue } = await ingest(eventsRequest('{"event":"a"}', test.readKey));
		await expectError(response, 403, "forbidden");
		expect(queue.calls).toEqual([]);
	});

	it("opens no admin route to a test key", async () => {
		const { live, test } = await createTenantWithTestSpace();
		const routes: [string, string, string?][] = [
			["POST", "/v1/admin/tenants", JSON.stringify({ id: uniqueTenantId() })],
			["POST", `/v1/admin/tenants/${live.id}/keys`, '{"scope":"write","test":true}'],
			["DELETE", `/v1/admin/keys/${test.readKey.slice(0, 14)}`],
			["POST", `/v1/admin/tenants/${live.id}/periods/2100-01/close`],
			["GET", "/v1/admin/metrics"],
			["GET", "/v1/admin/operations"],
			["GET", "/v1/admin/dead-letters"],
			["POST", "/v1/admin/dead-letters/replay", "{}"],
		];
		for (const [method, path, body] of routes)
			for (const key of [test.writeKey, test.readKey])
				await expectError(await call(path, { method, body, key }), 401, "unauthorized");
	});

	it("leaves test spaces out of the admin's tenant list", async () => {
		const { live, test } = await createTenantWithTestSpace();
		const ids = await listTenantIds(env.DB, "", 1_000_000);
		expect([ids.includes(live.id), ids.includes(test.id), ids.some((id) => id.includes("~"))]).toEqual([true, false, false]);
	});
});

describe("the test space's isolation", () => {
	it("counts test usage for the test read key only, never in the live usage or invoices", async () => {
		const { live, test } = await createTenantWithTestSpace();
		const plan = {
			key: "plan",
			currency: "USD",
			interval: "month",
			rateCards: [{ sku: "calls", price: { model: "unit", amount: "1" } }],
		};
		const month = `${new Date().toISOString().slice(0, 7)}-01`;
		for (const space of [live, test]) {
			await createPlan(space, plan);
			expect((await subscribe(space, "acme", { plan: "plan", startAt: month })).status).toBe(200);
		}
		const event = { id: "t-1", event: "metered", customerId: "acme", usage: { sku: "calls", quantity: 3 } };
		expect((await call("/v1/events", { method: "POST", key: test.writeKey, body: JSON.stringify(event) })).status).toBe(202);
		await untilConsumed(test, 1);
		expect(await flush(test)).toBeGreaterThan(0);

		const now = Date.now();
		const [day, next] = [now, now + 86_400_000].map((ms) => new Date(ms).toISOString().slice(0, 10));
		const usage = `/v1/usage?from=${day}&to=${next}&granularity=day`;
		expect(await getJson(usage, test.readKey)).toEqual({
			tenant: test.id,
			from: `${day}T00:00:00.000Z`,
			to: `${next}T00:00:00.000Z`,
			granularity: "day",
			items: [{ sku: "calls", unit: "unit", period: `${day}T00:00:00.000Z`, quantity: 3, quantityDecimal: "3", events: 1 }],
			adjustments: [],
		});
		expect(await getJson(usage, live.readKey)).toMatchObject({ tenant: live.id, items: [], adjustments: [] });

		type Invoices = { tenant: string; invoices: { customerId: string; total: number }[] };
		const invoices = async (key: string) => {
			const body = await getJson<Invoices>("/v1/invoices?period=current", key);
			return { tenant: body.tenant, invoices: body.invoices.map(({ customerId, total }) => ({ customerId, total })) };
		};
		expect(await invoices(test.readKey)).toEqual({ tenant: test.id, invoices: [{ customerId: "acme", total: 300 }] });
		expect(await invoices(live.readKey)).toEqual({ tenant: live.id, invoices: [{ customerId: "acme", total: 0 }] });
	});

	it("keeps meters and CORS settings apart between the two spaces", async () => {
		const { live, test } = await createTenantWithTestSpace();
		const meter = { slug: "calls", eventType: "metered", aggregation: "COUNT" };
		expect((await postJson("/v1/meters", meter, test.readKey)).status).toBe(201);
		const cors = { allowedOrigins: ["https://app.example.com"] };
		expect((await call("/v1/settings/cors", { method: "PUT", key: live.readKey, body: JSON.stringify(cors) })).status).toBe(200);

		const slugs = async (key: string) => (await getJson<{ meters: { slug: string }[] }>("/v1/meters", key)).meters.map((m) => m.slug);
		expect([await slugs(test.readKey), await slugs(live.readKey)]).toEqual([["calls"], []]);
		expect(await getJson("/v1/settings/cors", test.readKey)).toEqual({ allowedOrigins: null });
		expect(await getJson("/v1/settings/cors", live.readKey)).toEqual(cors);
	});
});
