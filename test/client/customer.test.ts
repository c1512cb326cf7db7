// Who an event is for: the client's customerId (and country) on every event, a call's own
// customerId and userId instead, bad arguments dropped and reported, bad values refused at the
// send by the edge's own validator, and track() still deferring all of that.
import { afterEach, describe, expect, it, vi } from "vitest";
import { InvalidEventError, type Analytics } from "../../src/client/index";
import { memoryClient, recorded } from "./helpers";

afterEach(() => {
	vi.restoreAllMocks();
});

describe("customerId", () => {
	it("sends the client's customerId with every event, and a call's own customerId or userId instead", async () => {
		const { ctx, queue, analytics, errors } = memoryClient({ customerId: "acme", userId: "u-1" });
		const thrown = new Error("boom");
		thrown.stack = "Error: boom\n    at f (a.ts:1:1)";

		analytics.track("a");
		analytics.track("b", { x: 1 }, { customerId: "globex" });
		analytics.track("c", undefined, { userId: "u-2" });
		analytics.usage("tokens", 5, "token", { customerId: "initech" });
		analytics.usage("tokens", 2, { customerId: "globex" });
		analytics.usage("tokens", 1);
		analytics.trackPerformance("render", 12, undefined, { customerId: "globex", userId: "u-9" });
		analytics.trackError(thrown, { k: 1 }, { customerId: "globex" });
		analytics.identify("u-3");
		analytics.track("d", {}, {});
		analytics.flush();
		await ctx.settle();

		expect(errors).toEqual([]);
		expect(recorded(queue)).toEqual([
			{ event: "a", userId: "u-1", customerId: "acme" },
			{ event: "b", userId: "u-1", customerId: "globex", properties: { x: 1 } },
			{ event: "c", userId: "u-2", customerId: "acme" },
			{ event: "$usage", userId: "u-1", customerId: "initech", usage: { sku: "tokens", unit: "token", micros: 5_000_000 } },
			{ event: "$usage", userId: "u-1", customerId: "globex", usage: { sku: "tokens", unit: "unit", micros: 2_000_000 } },
			{ event: "$usage", userId: "u-1", customerId: "acme", usage: { sku: "tokens", unit: "unit", micros: 1_000_000 } },
			{ event: "render", userId: "u-9", customerId: "globex", performance: { duration: 12 } },
			{
				event: "$error",
				userId: "u-1",
				customerId: "globex",
				properties: { k: 1, name: "Error", message: "boom", stackHash: expect.stringMatching(/^[0-9a-f]{16}$/) },
				performance: { statusCode: 500 },
			},
			{ event: "$identify", userId: "u-3", customerId: "acme" },
			{ event: "d", userId: "u-3", customerId: "acme", properties: {} },
		]);
	});

	it("sends no customerId without the option, except on calls that name one, and ignores an option that is not a string", async () => {
		const plain = memoryClient();
		const loose = memoryClient({ customerId: 7 as unknown as string });
		for (const { analytics } of [plain, loose]) {
			analytics.track("a");
			analytics.track("b", undefined, { customerId: "acme" });
			analytics.flush();
		}
		await Promise.all([plain.ctx.settle(), loose.ctx.settle()]);

		for (const { queue, errors } of [plain, loose]) {
			expect(errors).toEqual([]);
			expect(recorded(queue)).toEqual([{ event: "a" }, { event: "b", customerId: "acme" }]);
		}
	});

	it("sends the country option with every event", async () => {
		const { ctx, queue, analytics } = memoryClient({ country: "DE", customerId: "acme" });
		analytics.track("a");
		analytics.usage("tokens", 1, { customerId: "globex" });
		analytics.flush();
		await ctx.settle();

		expect(recorded(queue)).toEqual([
			{ event: "a", customerId: "acme", country: "DE" },
			{ event: "$usage", customerId: "globex", country: "DE", usage: { sku: "tokens", unit: "unit", micros: 1_000_000 } },
		]);
	});

	it("drops a call whose options are not an object, and reports it", async () => {
		const { ctx, queue, analytics, errors } = memoryClient();
		const loose = analytics as unknown as Record<string, (...args: unknown[]) => void>;

		loose.track!("a", undefined, "acme");
		loose.usage!("tokens", 1, "token", 5);
		loose.trackPerformance!("render", 1, {}, null);
		loose.trackError!(new Error("x"), undefined, true);
		analytics.track("kept");
		analytics.flush();
		await ctx.settle();

		expect(errors.map(({ error, info }) => ({ message: (error as Error).message, info }))).toEqual(
			[
				"track(event, properties, options) needs an object",
				"usage(sku, quantity, unit, options) needs an object",
				"trackPerformance(name, durationMs, properties, options) needs an object",
				"trackError(error, context, options) needs an object",
			].map((message) => ({ message, info: { stage: "track", events: 1 } })),
		);
		expect(recorded(queue)).toEqual([{ event: "kept" }]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 1, dropped: 4, failed: 0 });
	});

	it("refuses a customerId or userId the edge would refuse at the send, costing only that event", async () => {
		const { ctx, queue, analytics, errors } = memoryClient({ customerId: "acme" });

		analytics.track("numeric", undefined, { customerId: 42 as unknown as string });
		analytics.track("long", undefined, { customerId: "c".repeat(257) });
		analytics.track("empty", undefined, { customerId: "" });
		analytics.track("user", undefined, { userId: "u".repeat(257) });
		analytics.track("kept", undefined, { customerId: "c".repeat(256) });
		analytics.flush();
		await ctx.settle();

		expect(errors.map(({ error, info }) => ({ error, info }))).toEqual([
			{
				error: new InvalidEventError("numeric", [{ path: "customerId", message: "must be a string" }]),
				info: { stage: "validate", events: 1 },
			},
			{
				error: new InvalidEventError("long", [{ path: "customerId", message: "must be 1-256 characters" }]),
				info: { stage: "validate", events: 1 },
			},
			{
				error: new InvalidEventError("empty", [{ path: "customerId", message: "must be 1-256 characters" }]),
				info: { stage: "validate", events: 1 },
			},
			{
				error: new InvalidEventError("user", [{ path: "userId", message: "must be 0-256 characters" }]),
				info: { stage: "validate", events: 1 },
			},
		]);
		expect(recorded(queue)).toEqual([{ event: "kept", customerId: "c".repeat(256) }]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 1, dropped: 4, failed: 0 });
	});

	it("does no serialization or validation in a call with options: that waits for the send", async () => {
		const { ctx, queue, analytics } = memoryClient({ batchSize: 1000, customerId: "acme" });
		const stringify = vi.spyOn(JSON, "stringify");
		const calls: ((a: Analytics, i: number) => void)[] = [
			(a, i) => a.track("hot", { i }, { customerId: `c-${i}` }),
			(a, i) => a.usage("tokens", i, "token", { customerId: `c-${i}` }),
			(a, i) => a.trackPerformance("render", i, undefined, { userId: `u-${i}` }),
		];
		for (let i = 0; i < 300; i++) calls[i % 3]!(analytics, i);
		const during = { stringify: stringify.mock.calls.length, sent: queue.attempts };
		stringify.mockRestore();

		expect(during).toEqual({ stringify: 0, sent: 0 });
		analytics.flush();
		await ctx.settle();
		expect(analytics.stats()).toEqual({ queued: 0, sent: 300, dropped: 0, failed: 0 });
		expect(queue.events[299]!.customerId).toBe("acme");
		expect(queue.events[298]!.customerId).toBe("c-298");
	});
});
