// The client never throws into the caller: bad arguments, events the edge would refuse, a failing
// transport, a throwing waitUntil, queue or onError, an unknown transport; each is dropped or
// counted as failed, and onError hears why.
import { afterEach, describe, expect, it, vi } from "vitest";
import { createAnalytics, InvalidEventError } from "../../src/client/index";
import { errorLog, memoryClient, MemoryQueue, RecordingContext } from "./helpers";

afterEach(() => {
	vi.useRealTimers();
	vi.restoreAllMocks();
});

describe("never throwing", () => {
	it("reports calls with bad arguments to onError, drops them and carries on", async () => {
		const { ctx, queue, analytics, errors } = memoryClient();
		const loose = analytics as unknown as Record<string, (...args: unknown[]) => void>;

		expect(() => {
			loose.track!(undefined);
			loose.track!("ok", "not an object");
			loose.identify!(42);
			loose.usage!("api_calls", true);
			loose.usage!("", 3);
			loose.trackPerformance!("render", "slow");
			loose.trackError!(new Error("x"), 5);
			analytics.track("kept");
			analytics.flush();
		}).not.toThrow();
		await ctx.settle();

		expect(
			errors.map(({ error, info }) => ({ type: (error as Error).constructor.name, message: (error as Error).message, info })),
		).toEqual([
			{ type: "TypeError", message: "track(event) needs a non-empty event name", info: { stage: "track", events: 1 } },
			{ type: "TypeError", message: "track(event, properties) needs an object", info: { stage: "track", events: 1 } },
			{ type: "TypeError", message: "identify(userId) needs a string", info: { stage: "track", events: 1 } },
			{ type: "TypeError", message: "usage(sku, quantity) needs a number or a decimal string", info: { stage: "track", events: 1 } },
			{ type: "TypeError", message: "usage(sku) needs a non-empty sku", info: { stage: "track", events: 1 } },
			{ type: "TypeError", message: "trackPerformance(name, durationMs) needs a number", info: { stage: "track", events: 1 } },
			{ type: "TypeError", message: "trackError(error, context) needs an object", info: { stage: "track", events: 1 } },
		]);
		expect(queue.events.map((event) => event.event)).toEqual(["kept"]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 1, dropped: 7, failed: 0 });
	});

	it("drops only the events the edge would refuse, each reported with the edge's own field messages", async () => {
		const { ctx, queue, analytics, errors } = memoryClient();
		const cyclic: Record<string, unknown> = { name: "loop" };
		cyclic.self = cyclic;
		let deep: Record<string, unknown> = { leaf: true };
		for (let i = 0; i < 16; i++) deep = { deep };

		analytics.track("before");
		analytics.usage("api_calls", 0.0000001);
		analytics.track("x".repeat(201));
		analytics.track("nested", deep);
		analytics.track("cyclic", cyclic);
		analytics.trackPerformance("render", -1);
		analytics.track("after");
		analytics.flush();
		await ctx.settle();

		expect(queue.events.map((event) => event.event)).toEqual(["before", "after"]);
		const reported = errors.map(({ error, info }) => ({
			error: error instanceof InvalidEventError ? { event: error.event.slice(0, 10), issues: error.issues } : (error as Error).name,
			info,
		}));
		const validate = { stage: "validate", events: 1 };
		expect(reported).toEqual([
			{
				error: { event: "$usage", issues: [{ path: "usage.quantity", message: "has more than 6 fraction digits" }] },
				info: validate,
			},
			{ error: { event: "xxxxxxxxxx", issues: [{ path: "event", message: "must be 1-200 characters" }] }, info: validate },
			{
				error: { event: "nested", issues: [{ path: `properties${".deep".repeat(16)}`, message: "nesting deeper than 16 levels" }] },
				info: validate,
			},
			{ error: "TypeError", info: validate },
			{
				error: {
					event: "render",
					issues: [{ path: "performance.duration", message: "must be a number of milliseconds from 0 to 86400000" }],
				},
				info: validate,
			},
		]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 2, dropped: 5, failed: 0 });
	});

	it("counts a batch lost to a failing transport as failed, after its retries, and tells onError", async () => {
		vi.useFakeTimers();
		const error = new Error("queue unavailable");
		const ctx = new RecordingContext();
		const queue = new MemoryQueue(Infinity, error);
		const { errors, onError } = errorLog();
		const analytics = createAnalytics(ctx, { queue, tenant: "tenant-a" }, { onError, retries: 2, retryDelay: 100 });

		expect(() => {
			analytics.track("a");
			analytics.track("b");
			analytics.usage("api_calls", 1);
			analytics.flush();
		}).not.toThrow();
		await vi.advanceTimersByTimeAsync(300);
		await ctx.settle();

		expect(queue.attempts).toBe(3);
		expect(errors).toEqual([{ error, info: { stage: "send", events: 3 } }]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 3 });
	});

	it("survives a context whose waitUntil throws, a queue that throws synchronously and an onError that throws", async () => {
		const thrown: unknown[] = [];
		const ctx = {
			waitUntil(promise: Promise<unknown>) {
				thrown.push(promise);
				throw new Error("waitUntil is gone");
			},
		};
		const queue = {
			sendBatch(): Promise<void> {
				throw new Error("sync failure");
			},
		};
		const analytics = createAnalytics(
			ctx,
			{ queue, tenant: "tenant-a" },
			{
				retries: 0,
				onError: () => {
					throw new Error("hook failure");
				},
			},
		);

		expect(() => {
			analytics.track("a");
			analytics.flush();
		}).not.toThrow();
		// The work still ran even though the context refused it.
		for (let seen = 0; seen < thrown.length; seen++) await thrown[seen];
		expect(analytics.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 1 });
	});

	it("counts an unknown transport's events as failed, never throwing", async () => {
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		const analytics = createAnalytics(ctx, { endpoint: 42 } as never, { onError });
		analytics.track("a");
		analytics.flush();
		await ctx.settle();
		expect(errors.map(({ error, info }) => ({ message: (error as Error).message, info }))).toEqual([
			{
				message: "Meterline transport must be {queue, tenant}, {service, writeKey} or {endpoint, writeKey}",
				info: { stage: "send", events: 1 },
			},
		]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 1 });
	});
});
