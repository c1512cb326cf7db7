// GET /v1/admin/metrics and /v1/admin/operations page through tenants (?limit= 1-100, default 50,
// ?cursor= the previous page's last tenant id), so one invocation never asks every tenant: 120
// tenants come in pages of 50, 50 and 20 whose totals add up to the whole, exactly. This file's
// D1 holds only the tenants its paging test creates, so the pages are exact.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AggregatorOperations } from "../../src/aggregator/snapshot";
import type { TenantMetrics } from "../../src/read/metrics";
import { ADMIN_TOKEN, call, createTenant, getJson, uniqueTenantId } from "../helpers";
import { metricsWith } from "../read/helpers";

interface MetricsPage {
	tenants: TenantMetrics[];
	totals: Record<string, number | null>;
	nextCursor: string | null;
}

interface OperationsPage {
	pipeline: Record<string, number>;
	aggregators: Record<string, number>;
	tenants: ({ tenant: string } & AggregatorOperations)[];
	nextCursor: string | null;
}

const TENANTS = 120;

/** Every page of `path` from the first, following nextCursor. */
async function allPages<T extends { nextCursor: string | null }>(path: string, query = ""): Promise<T[]> {
	const pages: T[] = [];
	let cursor: string | null = null;
	do {
		const page: T = await getJson<T>(`${path}?${query}${cursor === null ? "" : `${query ? "&" : ""}cursor=${cursor}`}`, ADMIN_TOKEN);
		pages.push(page);
		cursor = page.nextCursor;
	} while (cursor !== null);
	return pages;
}

/** Totals of TenantMetrics with every count 0 but those given. */
function totalsWith(counts: Record<string, number>): Record<string, number | null> {
	const zero = Object.fromEntries(
		Object.entries(metricsWith({ id: "", writeKey: "", readKey: "" }))
			.filter(([, value]) => typeof value === "number")
			.map(([name]) => [name, 0]),
	);
	return { ...zero, ...counts, oldestUnflushedAgeMs: null };
}

describe("admin paging", () => {
	it("refuses unknown, repeated and malformed query parameters on both routes", async () => {
		for (const path of ["/v1/admin/metrics", "/v1/admin/operations"]) {
			for (const [query, field, message] of [
				["tenant=acme", "tenant", "unknown query parameter"],
				["limit=5&limit=6", "limit", "given more than once"],
				["limit=0", "limit", "must be an integer 1-100"],
				["limit=101", "limit", "must be an integer 1-100"],
				["limit=ten", "limit", "must be an integer 1-100"],
				["cursor=", "cursor", "must be a cursor from a previous page"],
				["cursor=Not%20an%20id", "cursor", "must be a cursor from a previous page"],
			]) {
				const response = await call(`${path}?${query}`, { key: ADMIN_TOKEN });
				expect({ path, query, status: response.status, body: await response.json() }).toEqual({
					path,
					query,
					status: 400,
					body: { error: { code: "invalid_request", message: `${field}: ${message}`, details: [{ path: field, message }] } },
				});
			}
		}
	});

	it("answers 120 tenants in pages of 50, 50 and 20 whose totals add up to every tenant's", async () => {
		const prefix = uniqueTenantId("page");
		// Ids sort in creation order. Tenant i has received i + 1 events and i % 3 dead letters.
		const ids = Array.from({ length: TENANTS }, (_, i) => `${prefix}-${String(i).padStart(3, "0")}`);
		for (const id of ids) await createTenant(id);
		await env.DB.batch(
			ids.map((id, i) =>
				env.DB.prepare("INSERT INTO producer_metrics (tenant, name, value) VALUES (?1, 'received', ?2)").bind(id, i + 1),
			),
		);
		await env.DB.batch(
			ids.flatMap((id, i) =>
				Array.from({ length: i % 3 }, (_, n) =>
					env.DB.prepare(
						"INSERT INTO dead_letters (id, tenant, body, error, attempts, first_failed_at, last_failed_at) VALUES (?1, ?2, '{\"json\":null}', 'test', 1, ?3, ?3)",
					).bind(`${id}/dead-${n}`, id, "2026-11-20T00:00:00.000Z"),
				),
			),
		);

		const metrics = await allPages<MetricsPage>("/v1/admin/metrics");
		expect(metrics.map((page) => page.tenants.map((tenant) => tenant.tenant))).toEqual([
			ids.slice(0, 50),
			ids.slice(50, 100),
			ids.slice(100),
		]);
		expect(metrics.map((page) => page.nextCursor)).toEqual([ids[49], ids[99], null]);
		expect(metrics.flatMap((page) => page.tenants)).toEqual(
			ids.map((id, i) => metricsWith({ id, writeKey: "", readKey: "" }, { received: i + 1, deadLettered: i % 3 })),
		);
		// Σ(i + 1) and Σ(i % 3) over each page: 1..50, 51..100, 101..120.
		expect(metrics.map((page) => page.totals)).toEqual([
			totalsWith({ received: 1_275, deadLettered: 49 }),
			totalsWith({ received: 3_775, deadLettered: 50 }),
			totalsWith({ received: 2_210, deadLettered: 21 }),
		]);
		expect(1_275 + 3_775 + 2_210).toBe((TENANTS * (TENANTS + 1)) / 2);
		expect(49 + 50 + 21).toBe(TENANTS);

		// A page of 100, then the last 20; the cursor is the last id of the page before.
		const large = await allPages<MetricsPage>("/v1/admin/metrics", "limit=100");
		expect(large.map((page) => [page.tenants.length, page.nextCursor, page.totals.received])).toEqual([
			[100, ids[99], 5_050],
			[20, null, 2_210],
		]);

		const operations = await allPages<OperationsPage>("/v1/admin/operations");
		expect(operations.map((page) => page.tenants.map((tenant) => tenant.tenant))).toEqual([
			ids.slice(0, 50),
			ids.slice(50, 100),
			ids.slice(100),
		]);
		expect(operations.map((page) => page.nextCursor)).toEqual([ids[49], ids[99], null]);
		// Each page's aggregator totals are the sums over its own tenants.
		for (const page of operations) {
			const sums: Record<string, number> = {};
			for (const { tenant: _tenant, ...ops } of page.tenants)
				for (const [name, value] of Object.entries(ops)) sums[name] = (sums[name] ?? 0) + value;
			expect(page.aggregators).toEqual(sums);
			expect(
				Object.keys(page.pipeline).every((name) =>
					["http_requests", "queue_messages", "queue_send_calls", "consumer_batches"].includes(name),
				),
			).toBe(true);
		}
		// Past the last tenant there is nothing, and no further page.
		expect(await getJson<MetricsPage>(`/v1/admin/metrics?cursor=${ids[TENANTS - 1]}`, ADMIN_TOKEN)).toEqual({
			tenants: [],
			totals: { oldestUnflushedAgeMs: null },
			nextCursor: null,
		});
	});
});
