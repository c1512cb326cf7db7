// POST/GET/DELETE /v1/meters end to end against the real aggregator: the answers and their exact
// bodies, the cap, tenant isolation, deletion that keeps history, slug reuse, and no write on a 400.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import type { MeterRegistry } from "../../src/aggregator/meter-definitions";
import { advanceClock, call, createTenant, freezeClockAt, postJson, useFrozenClock, type TestTenant } from "../helpers";
import { expectError } from "../security/helpers";

const clock = useFrozenClock(() => freezeClockAt(Date.UTC(2026, 10, 20, 12, 0, 0, 0)));
const iso = (ms: number) => new Date(ms).toISOString();

const tokens = (fields: Record<string, unknown> = {}) => ({
	slug: "llm_tokens",
	eventType: "llm_call",
	aggregation: "SUM",
	valueProperty: "$.tokens",
	groupBy: { model: "model" },
	filter: { plan: ["pro", "team"] },
	description: "Tokens by model",
	...fields,
});
const counter = (slug: string) => ({ slug, eventType: "api_call", aggregation: "COUNT" });

const create = (tenant: TestTenant, body: unknown) => postJson("/v1/meters", body, tenant.readKey);
const remove = (tenant: TestTenant, slug: string, key = tenant.readKey) => call(`/v1/meters/${slug}`, { method: "DELETE", key });
const listOf = async (tenant: TestTenant, key = tenant.readKey) => {
	const response = await call("/v1/meters", { key });
	expect(response.status).toBe(200);
	return (await response.json<{ meters: { slug: string }[] }>()).meters;
};

/** The aggregator's meters table, as stored. */
function storedRows(tenant: TestTenant) {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant.id), (_instance, state) =>
		state.storage.sql.exec("SELECT id, slug, created_at, deleted_at FROM meters ORDER BY id").toArray(),
	);
}

/** The slugs and ids of the aggregator's in-memory active meters. */
function activeInMemory(tenant: TestTenant) {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant.id), (instance: TenantAggregator) =>
		(instance as unknown as { meters: MeterRegistry }).meters.active().map(({ id, meter }) => ({ id, slug: meter.definition.slug })),
	);
}

describe("POST /v1/meters", () => {
	it("creates a meter and answers 201 with it, without the internal id", async () => {
		const tenant = await createTenant();
		const response = await create(tenant, tokens());
		expect(response.status).toBe(201);
		expect(await response.json()).toEqual({ ...tokens(), createdAt: iso(clock.start), deletedAt: null });
		expect(await storedRows(tenant)).toEqual([{ id: 1, slug: "llm_tokens", created_at: clock.start, deleted_at: null }]);
		expect(await activeInMemory(tenant)).toEqual([{ id: 1, slug: "llm_tokens" }]);
	});

	it("answers 409 naming the slug while an active meter has it, and keeps the first", async () => {
		const tenant = await createTenant();
		expect((await create(tenant, tokens())).status).toBe(201);
		await expectError(await create(tenant, tokens({ aggregation: "MAX" })), 409, "conflict", [
			{ path: "slug", message: "is taken by an active meter" },
		]);
		expect(await listOf(tenant)).toEqual([{ ...tokens(), createdAt: iso(clock.start), deletedAt: null }]);
	});

	it("answers 400 naming each bad field, and writes nothing", async () => {
		const tenant = await createTenant();
		const body = tokens({ aggregation: "COUNT", groupBy: { region: "geo..region" }, filter: { plan: [] } });
		await expectError(await create(tenant, body), 400, "invalid_request", [
			{ path: "valueProperty", message: "must be absent for COUNT, which counts events" },
			{ path: "groupBy.region", message: 'must be non-empty keys joined by "."' },
			{ path: "filter.plan", message: "must be an array of 1-100 values" },
		]);
		expect(await listOf(tenant)).toEqual([]);
		expect(await storedRows(tenant)).toEqual([]);
	});

	it.each([
		["an unknown field", JSON.stringify(tokens({ windowSize: "HOUR" })), [{ path: "windowSize", message: "unknown field" }]],
		["broken JSON", '{"slug":', [{ path: "body", message: "invalid JSON" }]],
		["an array", "[]", [{ path: "body", message: "must be a JSON object" }]],
	])("answers 400 for %s", async (_, body, details) => {
		const tenant = await createTenant();
		await expectError(await call("/v1/meters", { method: "POST", body, key: tenant.readKey }), 400, "invalid_request", details);
		expect(await storedRows(tenant)).toEqual([]);
	});

	it("answers 415 for a body that is not JSON, and 400 for a query parameter", async () => {
		const tenant = await createTenant();
		const headers = { "content-type": "text/plain" };
		await expectError(
			await call("/v1/meters", { method: "POST", body: JSON.stringify(tokens()), headers, key: tenant.readKey }),
			415,
			"unsupported_media_type",
		);
		await expectError(await postJson("/v1/meters?tenant=x", tokens(), tenant.readKey), 400, "invalid_request", [
			{ path: "tenant", message: "unknown query parameter" },
		]);
		expect(await storedRows(tenant)).toEqual([]);
	});

	it("refuses the 51st active meter naming the slug, and takes one again after a deletion", async () => {
		const tenant = await createTenant();
		const created = await Promise.all(Array.from({ length: 50 }, (_, i) => create(tenant, counter(`m${i}`))));
		expect(created.map((response) => response.status)).toEqual(Array(50).fill(201));
		await expectError(await create(tenant, counter("m50")), 400, "invalid_request", [
			{ path: "slug", message: "is a new meter, and the tenant already has 50 active meters (the cap); delete one first" },
		]);
		// At the cap a taken slug is still a conflict, not the cap.
		expect((await create(tenant, counter("m7"))).status).toBe(409);
		expect((await remove(tenant, "m7")).status).toBe(200);
		expect((await create(tenant, counter("m50"))).status).toBe(201);
		expect((await listOf(tenant)).length).toBe(50);
		expect((await storedRows(tenant)).length).toBe(51);
	});
});

describe("GET /v1/meters", () => {
	it("lists the active meters by slug, and answers GET /v1/meters/:slug with one", async () => {
		const tenant = await createTenant();
		expect((await create(tenant, counter("zeta"))).status).toBe(201);
		advanceClock(1000);
		expect((await create(tenant, tokens())).status).toBe(201);
		const zeta = { ...counter("zeta"), groupBy: {}, filter: {}, createdAt: iso(clock.start), deletedAt: null };
		const llm = { ...tokens(), createdAt: iso(clock.start + 1000), deletedAt: null };
		expect(await listOf(tenant)).toEqual([llm, zeta]);
		const response = await call("/v1/meters/zeta", { key: tenant.readKey });
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual(zeta);
	});

	it("answers 404 for an unknown slug and 400 for one no meter can have", async () => {
		const tenant = await createTenant();
		await expectError(await call("/v1/meters/nothing", { key: tenant.readKey }), 404, "not_found");
		await expectError(await call("/v1/meters/Bad-Slug", { key: tenant.readKey }), 400, "invalid_request", [
			{ path: "slug", message: 'must be 1-64 lower-case letters and digits, words joined by single underscores ("api_tokens")' },
		]);
		await expectError(await call("/v1/meters/%ZZ", { key: tenant.readKey }), 400, "invalid_request", [
			{ path: "slug", message: "is not valid percent-encoding" },
		]);
	});
});

describe("DELETE /v1/meters/:slug", () => {
	it("marks the meter deleted, keeps its row, and answers 404 for it from then on", async () => {
		const tenant = await createTenant();
		expect((await create(tenant, tokens())).status).toBe(201);
		const deletedAt = advanceClock(60_000);
		const response = await remove(tenant, "llm_tokens");
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ ...tokens(), createdAt: iso(clock.start), deletedAt: iso(deletedAt) });
		expect(await listOf(tenant)).toEqual([]);
		await expectError(await call("/v1/meters/llm_tokens", { key: tenant.readKey }), 404, "not_found");
		await expectError(await remove(tenant, "llm_tokens"), 404, "not_found");
		expect(await storedRows(tenant)).toEqual([{ id: 1, slug: "llm_tokens", created_at: clock.start, deleted_at: deletedAt }]);
		expect(await activeInMemory(tenant)).toEqual([]);
	});

	it("frees the slug for a new meter with a new id; the aggregator resolves the slug to the active one, else the one deleted last", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		expect((await create(tenant, tokens())).status).toBe(201);
		const firstDeleted = advanceClock(1000);
		expect((await remove(tenant, "llm_tokens")).status).toBe(200);
		expect(await stub.getMeter(tenant.id, "llm_tokens")).toMatchObject({ id: 1, deletedAt: iso(firstDeleted) });

		const recreated = advanceClock(1000);
		const response = await create(tenant, tokens({ aggregation: "MAX" }));
		expect(response.status).toBe(201);
		expect(await response.json()).toEqual({ ...tokens({ aggregation: "MAX" }), createdAt: iso(recreated), deletedAt: null });
		expect(await stub.getMeter(tenant.id, "llm_tokens")).toMatchObject({ id: 2, aggregation: "MAX", deletedAt: null });
		expect(await activeInMemory(tenant)).toEqual([{ id: 2, slug: "llm_tokens" }]);

		const secondDeleted = advanceClock(1000);
		expect((await remove(tenant, "llm_tokens")).status).toBe(200);
		expect(await stub.getMeter(tenant.id, "llm_tokens")).toMatchObject({ id: 2, deletedAt: iso(secondDeleted) });
		expect(await stub.getMeter(tenant.id, "never_made")).toBeNull();
		expect(await storedRows(tenant)).toEqual([
			{ id: 1, slug: "llm_tokens", created_at: clock.start, deleted_at: firstDeleted },
			{ id: 2, slug: "llm_tokens", created_at: recreated, deleted_at: secondDeleted },
		]);
	});
});

describe("who may manage meters", () => {
	it("refuses a write key (403) and no key (401) on every meter route", async () => {
		const tenant = await createTenant();
		expect((await create(tenant, tokens())).status).toBe(201);
		const routes = [
			{ method: "POST", path: "/v1/meters", body: JSON.stringify(counter("other")) },
			{ method: "GET", path: "/v1/meters" },
			{ method: "GET", path: "/v1/meters/llm_tokens" },
			{ method: "DELETE", path: "/v1/meters/llm_tokens" },
		];
		for (const route of routes) {
			await expectError(await call(route.path, { ...route, key: tenant.writeKey }), 403, "forbidden");
			await expectError(await call(route.path, route), 401, "unauthorized");
		}
		expect(await listOf(tenant)).toEqual([{ ...tokens(), createdAt: iso(clock.start), deletedAt: null }]);
	});

	it("keeps each tenant's meters to itself: another tenant can neither see nor delete them", async () => {
		const [owner, other] = await Promise.all([createTenant(), createTenant()]);
		expect((await create(owner, tokens())).status).toBe(201);
		expect(await listOf(other)).toEqual([]);
		await expectError(await call("/v1/meters/llm_tokens", { key: other.readKey }), 404, "not_found");
		await expectError(await remove(other, "llm_tokens", other.readKey), 404, "not_found");
		// The other tenant may use the same slug for its own meter.
		expect((await create(other, counter("llm_tokens"))).status).toBe(201);
		expect(await listOf(owner)).toEqual([{ ...tokens(), createdAt: iso(clock.start), deletedAt: null }]);
	});
});
