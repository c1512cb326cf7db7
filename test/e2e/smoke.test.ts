import { describe, expect, it, vi } from "vitest";
import { call, createTenant, postJson } from "../helpers";

describe("smoke", () => {
	it("counts events end to end", async () => {
		const tenant = await createTenant();
		const now = Date.now();
		const events = Array.from({ length: 10 }, (_, i) => ({
			id: `e${i}`,
			event: "api_call",
			timestamp: now,
			usage: { sku: "tokens", quantity: 0.1 },
		}));
		const res = await postJson("/v1/events", { events }, tenant.writeKey);
		expect(res.status).toBe(202);
		await vi.waitFor(
			async () => {
				const flushed = await call("/v1/flush", { method: "POST", key: tenant.writeKey });
				const usage = await (await call("/v1/usage?granularity=month", { key: tenant.readKey })).json<any>();
				expect(usage.items).toEqual([
					{ sku: "tokens", unit: "unit", period: expect.any(String), quantity: 1, quantityDecimal: "1", events: 10 },
				]);
			},
			{ timeout: 10_000, interval: 100 },
		);
	});
});
