// End to end through the real local queue: thousands of events for two tenants, with duplicates,
// POSTed to /v1/events, must come out of every report exactly as the ledger computed here says.
import { describe, expect, it, vi } from "vitest";
import { call, createTenant, getJson, postJson, type TestTenant } from "../helpers";
import { expectedStats, expectedUsage, generateEvents, mulberry32, sendPlan, type GeneratedEvent, type WireEvent } from "./helpers";

/** Change it to replay another run; every assertion message names it. */
const SEED = 0x4d657465;
const EVENTS_PER_TENANT = 1800;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Timestamps cover the 50 hours before the current hour: at least three UTC days. */
const SPAN = 50 * HOUR;

interface StatsReport {
	tenant: string;
	items: ReturnType<typeof expectedStats>;
}
interface UsageReport {
	tenant: string;
	items: ReturnType<typeof expectedUsage>["items"];
}

async function post(tenant: TestTenant, batch: WireEvent[]): Promise<void> {
	const response = await postJson("/v1/events", { events: batch }, tenant.writeKey);
	expect(response.status, `seed ${SEED}`).toBe(202);
	expect(await response.json(), `seed ${SEED}`).toEqual({ accepted: batch.length, ids: batch.map((event) => event.id) });
}

const sum = (items: { count?: number; events?: number }[], field: "count" | "events") =>
	items.reduce((total, item) => total + item[field]!, 0);

describe("ledger", () => {
	it("reports exactly what was sent, once per event id, for each tenant apart", { timeout: 120_000 }, async () => {
		const random = mulberry32(SEED);
		const now = Date.now();
		const start = now - (now % HOUR) - SPAN;
		const [alpha, beta, bystander] = await Promise.all([createTenant(), createTenant(), createTenant()]);
		// Both tenants use the same ids evt-0…: dedupe is per tenant, so each still counts all of its own.
		const tenants = [alpha, beta].map((tenant) => {
			const events: GeneratedEvent[] = generateEvents(random, EVENTS_PER_TENANT, start, SPAN);
			return { tenant, truths: events.map((event) => event.truth), ...sendPlan(random, events) };
		});
		const sent = tenants.reduce((total, t) => total + t.batches.flat().length, 0);
		expect(sent, `seed ${SEED}: the run must send thousands of events`).toBeGreaterThan(4000);
		for (const t of tenants) expect(t.duplicates, `seed ${SEED}: duplicates`).toBeGreaterThan(150);

		// Interleave the tenants' requests so queue batches mix their messages.
		for (let i = 0; i < Math.max(...tenants.map((t) => t.batches.length)); i++) {
			for (const t of tenants) if (t.batches[i]) await post(t.tenant, t.batches[i]!);
		}

		const from = new Date(start - (start % DAY)).toISOString();
		const to = new Date(start + SPAN - ((start + SPAN) % DAY) + DAY).toISOString();
		const range = `from=${from}&to=${to}`;

		// Wait until each aggregator has received everything and flushed it to D1.
		await vi.waitFor(
			async () => {
				for (const { tenant, truths } of tenants) {
					const flush = await call("/v1/flush", { method: "POST", key: tenant.writeKey });
					expect(flush.status).toBe(200);
					const stats = await getJson<StatsReport>(`/v1/stats?${range}&granularity=day`, tenant.readKey);
					const usage = await getJson<UsageReport>(`/v1/usage?${range}&granularity=month`, tenant.readKey);
					expect(sum(stats.items, "count"), `seed ${SEED}: events counted for ${tenant.id}`).toBeGreaterThanOrEqual(
						truths.length,
					);
					expect(sum(usage.items, "events"), `seed ${SEED}: metered events for ${tenant.id}`).toBeGreaterThanOrEqual(
						truths.filter((truth) => truth.usage).length,
					);
				}
			},
			{ timeout: 90_000, interval: 250 },
		);

		for (const { tenant, truths } of tenants) {
			for (const granularity of ["hour", "day", "month"] as const) {
				const report = await getJson<UsageReport>(`/v1/usage?${range}&granularity=${granularity}`, tenant.readKey);
				expect(report.tenant).toBe(tenant.id);
				expect(report.items, `seed ${SEED}: ${tenant.id} usage by ${granularity}`).toEqual(
					expectedUsage(truths, granularity).items,
				);
			}
			for (const granularity of ["minute", "hour", "day"] as const) {
				const report = await getJson<StatsReport>(`/v1/stats?${range}&granularity=${granularity}`, tenant.readKey);
				expect(report.tenant).toBe(tenant.id);
				expect(report.items, `seed ${SEED}: ${tenant.id} stats by ${granularity}`).toEqual(expectedStats(truths, granularity));
			}
			// The CSV carries the exact decimal text of every sum.
			for (const granularity of ["day", "month"] as const) {
				const csv = await call(`/v1/usage?${range}&granularity=${granularity}`, {
					key: tenant.readKey,
					headers: { accept: "text/csv" },
				});
				expect(await csv.text(), `seed ${SEED}: ${tenant.id} CSV usage by ${granularity}`).toBe(
					expectedUsage(truths, granularity).csv,
				);
			}
		}

		// A tenant that sent nothing sees nothing of the others'.
		expect((await getJson<UsageReport>(`/v1/usage?${range}&granularity=month`, bystander.readKey)).items).toEqual([]);
		expect((await getJson<StatsReport>(`/v1/stats?${range}&granularity=day`, bystander.readKey)).items).toEqual([]);
	});
});
