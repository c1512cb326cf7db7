// The service transport for real: the main Worker's MeterlineIngest entrypoint, called by RPC
// through `exports` as a service binding would, into the real queue, consumer and reports.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createAnalytics, SendError, type MeterlineEvent, type ServiceLike } from "../../src/client/index";
import { createTenant } from "../helpers";
import { errorLog, RecordingContext, reports } from "./helpers";

const none = { count: 0, sum: 0, min: null, max: null };

/** MeterlineIngest, with each call's events and result (or error) recorded. */
function recordingService() {
	const calls: { events: MeterlineEvent[]; result?: unknown; error?: string }[] = [];
	const service: ServiceLike = {
		async ingest(events, writeKey) {
			const call: (typeof calls)[number] = { events: structuredClone(events) };
			calls.push(call);
			try {
				call.result = await exports.MeterlineIngest.ingest(events, writeKey);
				return call.result;
			} catch (err) {
				call.error = (err as Error).message;
				throw err;
			}
		},
	};
	return { service, calls };
}

describe("service transport", () => {
	it("splits a batch into calls of at most 1 MiB of JSON, which the entrypoint takes, and refuses a larger call with a 413", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		const { service, calls } = recordingService();
		const analytics = createAnalytics(ctx, { service, writeKey: tenant.writeKey }, { onError, batchSize: 100 });
		const padding = "y".repeat(30_000);

		for (let i = 0; i < 40; i++) analytics.track("upload", { i, padding });
		analytics.flush();
		await ctx.settle();

		expect(errors).toEqual([]);
		// 40 events of ~30 KB: 34 fit under 1 MiB, then the other 6.
		expect(calls.map((call) => call.events.length)).toEqual([34, 6]);
		for (const call of calls) expect(new TextEncoder().encode(JSON.stringify(call.events)).length).toBeLessThanOrEqual(1_048_576);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 40, dropped: 0, failed: 0 });

		const tooLarge = Array.from({ length: 40 }, (_, i) => ({
			id: `big-${i}`,
			event: "upload",
			timestamp: Date.now(),
			properties: { padding },
		}));
		await expect(Promise.resolve(exports.MeterlineIngest.ingest(tooLarge, tenant.writeKey))).rejects.toThrow(
			/^413 payload_too_large: The events are \d+ bytes as JSON, over 1048576/,
		);
	});

	it("calls ingest(events, writeKey) with the HTTP event shape, and the events reach the reports", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		const { service, calls } = recordingService();
		const analytics = createAnalytics(ctx, { service, writeKey: tenant.writeKey }, { onError });

		analytics.track("checkout", { cart: 3 });
		analytics.usage("tokens", 1.25, "token");
		analytics.usage("tokens", 2);
		analytics.trackPerformance("db_query", 4);
		analytics.flush();
		await ctx.settle();

		expect(errors).toEqual([]);
		expect(calls).toHaveLength(1);
		const [{ events, result }] = calls as [(typeof calls)[number]];
		expect(events.map(({ event, properties, usage, performance }) => ({ event, properties, usage, performance }))).toEqual([
			{ event: "checkout", properties: { cart: 3 }, usage: undefined, performance: undefined },
			{ event: "$usage", properties: undefined, usage: { sku: "tokens", quantity: 1.25, unit: "token" }, performance: undefined },
			{ event: "$usage", properties: undefined, usage: { sku: "tokens", quantity: 2 }, performance: undefined },
			{ event: "db_query", properties: undefined, usage: undefined, performance: { duration: 4 } },
		]);
		// The entrypoint keeps the client's ids: a resend would be deduplicated.
		expect(result).toEqual({ accepted: 4, ids: events.map((event) => event.id) });
		expect(analytics.stats()).toEqual({ queued: 0, sent: 4, dropped: 0, failed: 0 });

		const { stats, usage } = await reports(tenant, 4);
		expect(stats).toEqual({
			checkout: { count: 1, errors: 0, duration: none },
			$usage: { count: 2, errors: 0, duration: none },
			db_query: { count: 1, errors: 0, duration: { count: 1, sum: 4, min: 4, max: 4 } },
		});
		expect(usage).toEqual([
			{ sku: "tokens", unit: "token", quantity: 1.25, events: 1 },
			{ sku: "tokens", unit: "unit", quantity: 2, events: 1 },
		]);
	});

	it("does not retry a refusal that would not change (403 for a read key), and counts the events as failed", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		const { service, calls } = recordingService();
		const analytics = createAnalytics(ctx, { service, writeKey: tenant.readKey }, { onError });

		analytics.track("a");
		analytics.track("b");
		analytics.flush();
		await ctx.settle();

		expect(calls.map((call) => call.error)).toEqual(["403 forbidden: A read key cannot use this route"]);
		expect(errors).toHaveLength(1);
		const [{ error, info }] = errors as [(typeof errors)[number]];
		expect(error).toBeInstanceOf(SendError);
		expect({ status: (error as SendError).status, message: (error as SendError).message, info }).toEqual({
			status: 403,
			message: "403 forbidden: A read key cannot use this route",
			info: { stage: "send", events: 2 },
		});
		expect(analytics.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 2 });
	});

	it("splits more than 1000 events into calls of at most 1000", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const { service, calls } = recordingService();
		const analytics = createAnalytics(
			ctx,
			{ service, writeKey: tenant.writeKey },
			{ batchSize: 1000, maxQueue: 5000, flushInterval: 0 },
		);

		for (let i = 0; i < 1000; i++) analytics.track("bulk", { i });
		for (let i = 0; i < 5; i++) analytics.track("bulk", { i });
		analytics.flush();
		await ctx.settle();

		expect(calls.map((call) => ({ events: call.events.length, accepted: (call.result as { accepted: number }).accepted }))).toEqual([
			{ events: 1000, accepted: 1000 },
			{ events: 5, accepted: 5 },
		]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 1005, dropped: 0, failed: 0 });
	});
});
