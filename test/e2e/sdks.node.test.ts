// posthog-node and @segment/analytics-node, with their default settings and only the host changed,
// send to the local pipeline; every event is counted exactly once, and a resent id once.
import { Analytics } from "@segment/analytics-node";
import { PostHog } from "posthog-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startLocalPipeline, type LocalPipeline, type TenantKeys } from "../../src/scripts/local-pipeline";

let pipeline: LocalPipeline;

beforeAll(async () => {
	pipeline = await startLocalPipeline();
});

afterAll(async () => {
	await pipeline?.stop();
});

interface StatsItem {
	event: string;
	count: number;
}

/** Counts per event name over the last and next hour, once the queue has delivered `total`. */
async function settledCounts(tenant: TenantKeys, total: number): Promise<Record<string, number>> {
	const from = new Date(Date.now() - 3_600_000).toISOString();
	const to = new Date(Date.now() + 3_600_000).toISOString();
	let counts: Record<string, number> = {};
	await vi.waitFor(
		async () => {
			await pipeline.call("/v1/flush", { method: "POST", key: tenant.writeKey });
			const response = await pipeline.call(`/v1/stats?granularity=hour&from=${from}&to=${to}`, { key: tenant.readKey });
			const { items } = (await response.json()) as { items: StatsItem[] };
			counts = {};
			for (const item of items) counts[item.event] = (counts[item.event] ?? 0) + item.count;
			expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(total);
		},
		{ timeout: 60_000, interval: 250 },
	);
	return counts;
}

async function usageOf(tenant: TenantKeys): Promise<unknown[]> {
	const response = await pipeline.call("/v1/usage?granularity=month", { key: tenant.readKey });
	const { items } = (await response.json()) as { items: { sku: string; unit: string; quantity: number; events: number }[] };
	return items.map(({ sku, unit, quantity, events }) => ({ sku, unit, quantity, events }));
}

describe("@segment/analytics-node", () => {
	it("counts hundreds of tracks and identifies exactly once, and a resent messageId once", async () => {
		const tenant = await pipeline.createTenant("segment-sdk");
		const analytics = new Analytics({ writeKey: tenant.writeKey, host: pipeline.url });
		const errors: unknown[] = [];
		analytics.on("error", (err) => errors.push(err));
		for (let i = 0; i < 300; i++) {
			analytics.track({
				userId: `user-${i % 7}`,
				event: i % 3 === 0 ? "Signed Up" : "Page Viewed",
				properties: { i, usage: { sku: "api_calls", quantity: 0.1, unit: "call" } },
			});
		}
		for (let i = 0; i < 20; i++) analytics.identify({ userId: `user-${i}`, traits: { plan: "pro" } });
		analytics.track({ userId: "user-1", event: "Resent", messageId: "segment-fixed-id" });
		analytics.track({ userId: "user-1", event: "Resent", messageId: "segment-fixed-id" });
		await analytics.closeAndFlush();
		expect(errors).toEqual([]);

		expect(await settledCounts(tenant, 321)).toEqual({ "Signed Up": 100, "Page Viewed": 200, $identify: 20, Resent: 1 });
		expect(await usageOf(tenant)).toEqual([{ sku: "api_calls", unit: "call", quantity: 30, events: 300 }]);
	});
});

describe("posthog-node", () => {
	it("counts hundreds of gzipped captures and identifies exactly once, and a resent uuid once", async () => {
		const tenant = await pipeline.createTenant("posthog-sdk");
		const posthog = new PostHog(tenant.writeKey, { host: pipeline.url });
		for (let i = 0; i < 300; i++) {
			posthog.capture({
				distinctId: `user-${i % 7}`,
				event: i % 3 === 0 ? "signed_up" : "$pageview",
				properties: { i, usage: { sku: "tokens", quantity: 1.25 } },
			});
		}
		for (let i = 0; i < 20; i++) posthog.identify({ distinctId: `user-${i}`, properties: { plan: "pro" } });
		const uuid = "0192e4a0-0000-7000-8000-000000000001";
		posthog.capture({ distinctId: "user-1", event: "resent", uuid });
		posthog.capture({ distinctId: "user-1", event: "resent", uuid });
		await posthog.shutdown();

		expect(await settledCounts(tenant, 321)).toEqual({ signed_up: 100, $pageview: 200, $identify: 20, resent: 1 });
		expect(await usageOf(tenant)).toEqual([{ sku: "tokens", unit: "unit", quantity: 375, events: 300 }]);
	});
});
