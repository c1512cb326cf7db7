// The queue transport for real: env.EVENTS, the local queue delivering to the real consumer and
// aggregator, then POST /v1/flush and the reports.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createAnalytics } from "../../src/client/index";
import { createTenant, RecordingQueue } from "../helpers";
import { errorLog, RecordingContext, reports } from "./helpers";

const none = { count: 0, sum: 0, min: null, max: null };

describe("queue transport", () => {
	it("delivers every kind of event through the real queue into /v1/stats and /v1/usage", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		const analytics = createAnalytics(ctx, { queue: env.EVENTS, tenant: tenant.id }, { onError });

		analytics.track("page_view", { path: "/pricing" });
		analytics.track("page_view", { path: "/docs" });
		analytics.identify("user-1", { plan: "pro" });
		analytics.usage("api_calls", 2.5, "call");
		analytics.usage("api_calls", 0.1, "call");
		analytics.trackError(new Error("boom"));
		analytics.trackPerformance("render", 12.5);
		analytics.trackPerformance("render", 7.5);
		analytics.flush();
		await ctx.settle();

		expect(errors).toEqual([]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 8, dropped: 0, failed: 0 });
		const { stats, usage } = await reports(tenant, 8);
		expect(stats).toEqual({
			page_view: { count: 2, errors: 0, duration: none },
			$identify: { count: 1, errors: 0, duration: none },
			$usage: { count: 2, errors: 0, duration: none },
			$error: { count: 1, errors: 1, duration: none },
			render: { count: 2, errors: 0, duration: { count: 2, sum: 20, min: 7.5, max: 12.5 } },
		});
		expect(usage).toEqual([{ sku: "api_calls", unit: "call", quantity: 2.6, events: 2 }]);
	});

	it("sends EventsMessages the consumer accepts, redacted and with defaults, packed into one sendBatch", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const queue = new RecordingQueue();
		const analytics = createAnalytics(
			ctx,
			{ queue, tenant: tenant.id },
			{ batchSize: 50, defaults: { app: "shop" }, redact: ["token"] },
		);

		for (let i = 0; i < 30; i++) analytics.track("item_viewed", { item: i, session: { Token: `t-${i}` } });
		analytics.flush();
		await ctx.settle();

		expect(queue.calls).toHaveLength(1);
		expect(queue.messages.map(({ v, tenant: t, events }) => ({ v, tenant: t, events: events.length }))).toEqual([
			{ v: 1, tenant: tenant.id, events: 30 },
		]);
		expect(queue.messages[0]!.events.map((event) => event.properties)).toEqual(
			Array.from({ length: 30 }, (_, i) => ({ app: "shop", item: i, session: { Token: "[redacted]" } })),
		);
		expect(queue.failed).toBe(0);
		const { stats } = await reports(tenant, 30);
		expect(stats).toEqual({ item_viewed: { count: 30, errors: 0, duration: none } });
	});
});
