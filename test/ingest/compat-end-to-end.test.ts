// Both compatible APIs end to end through the real local queue and aggregator: a resent messageId
// or uuid, whichever endpoint carries it, is counted and metered once.
import { describe, expect, it } from "vitest";
import { call, createTenant } from "../helpers";
import { basicAuth, gzip, settled } from "./helpers";

async function expectAccepted(response: Response, body: unknown): Promise<void> {
	expect({ status: response.status, body: await response.json() }).toEqual({ status: 200, body });
}

describe("Segment end to end", () => {
	it("counts a messageId resent over /v1/track and /v1/batch once", async () => {
		const tenant = await createTenant();
		const order = {
			messageId: "seg-dup-1",
			event: "Order Completed",
			userId: "u1",
			properties: { usage: { sku: "api_calls", quantity: 2, unit: "call" } },
		};
		const basic = { authorization: basicAuth(tenant.writeKey) };
		const success = { success: true };

		await expectAccepted(await call("/v1/track", { method: "POST", headers: basic, body: JSON.stringify(order) }), success);
		await expectAccepted(
			await call("/v1/track", { method: "POST", body: JSON.stringify({ ...order, writeKey: tenant.writeKey }) }),
			success,
		);
		const batch = [
			{ type: "track", ...order },
			{ type: "identify", messageId: "seg-identify-1", userId: "u1", traits: { plan: "pro" } },
			{
				type: "track",
				messageId: "seg-order-2",
				event: "Order Completed",
				userId: "u2",
				properties: { usage: { sku: "api_calls", quantity: 0.5, unit: "call" } },
			},
		];
		await expectAccepted(
			await call("/v1/batch", { method: "POST", headers: basic, body: JSON.stringify({ batch, sentAt: new Date().toISOString() }) }),
			success,
		);

		const { counts, usage, metrics } = await settled(tenant, 5);
		expect(counts).toEqual({ "Order Completed": 2, $identify: 1 });
		expect(usage).toEqual([{ sku: "api_calls", unit: "call", quantity: 2.5, events: 2 }]);
		expect(metrics.aggregated).toBe(3);
		expect(metrics.duplicatesDropped).toBe(metrics.consumed - 3);
	});
});

describe("PostHog end to end", () => {
	it("counts a uuid resent over /batch/, /capture/ and a gzipped /e/ once", async () => {
		const tenant = await createTenant();
		const signup = {
			event: "signed_up",
			distinct_id: "u1",
			uuid: "0192e4a0-0000-7000-8000-00000000e2e1",
			properties: { usage: { sku: "tokens", quantity: 1.5 } },
		};
		const pageview = {
			event: "$pageview",
			distinct_id: "u1",
			uuid: "0192e4a0-0000-7000-8000-00000000e2e2",
			properties: { $current_url: "https://example.com/" },
		};
		const status = { status: 1 };

		await expectAccepted(
			await call("/batch/", {
				method: "POST",
				body: JSON.stringify({ api_key: tenant.writeKey, batch: [signup, pageview], sent_at: new Date().toISOString() }),
			}),
			status,
		);
		await expectAccepted(
			await call("/capture/", { method: "POST", body: JSON.stringify({ api_key: tenant.writeKey, ...signup }) }),
			status,
		);
		const resent = await gzip([
			{
				event: pageview.event,
				uuid: pageview.uuid,
				properties: { ...pageview.properties, token: tenant.writeKey, distinct_id: "u1" },
			},
		]);
		await expectAccepted(
			await call("/e/?compression=gzip-js", { method: "POST", headers: { "content-type": "text/plain" }, body: resent }),
			status,
		);
		await expectAccepted(
			await call("/i/v0/e", {
				method: "POST",
				body: JSON.stringify({
					api_key: tenant.writeKey,
					event: "$identify",
					distinct_id: "u1",
					uuid: "0192e4a0-0000-7000-8000-00000000e2e3",
				}),
			}),
			status,
		);

		const { counts, usage, metrics } = await settled(tenant, 5);
		expect(counts).toEqual({ signed_up: 1, $pageview: 1, $identify: 1 });
		expect(usage).toEqual([{ sku: "tokens", unit: "unit", quantity: 1.5, events: 1 }]);
		expect(metrics.aggregated).toBe(3);
		expect(metrics.duplicatesDropped).toBe(metrics.consumed - 3);
	});
});
