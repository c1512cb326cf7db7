// When batches leave: by size or by interval (whichever first), on flush(), one send at a time,
// always through ctx.waitUntil; and what maxQueue drops. Time is fake and moved by hand.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createAnalytics } from "../../src/client/index";
import { deferred } from "../helpers";
import { errorLog, MemoryQueue, RecordingContext } from "./helpers";

function setup(options: Parameters<typeof createAnalytics>[2] = {}) {
	const ctx = new RecordingContext();
	const queue = new MemoryQueue();
	const log = errorLog();
	const analytics = createAnalytics(ctx, { queue, tenant: "tenant-b" }, { onError: log.onError, ...options });
	return { ctx, queue, analytics, errors: log.errors };
}

/** Event names per sendBatch call. */
const sent = (queue: MemoryQueue) => queue.batches.map((batch) => batch.flatMap((message) => message.events.map((event) => event.event)));

function track(analytics: ReturnType<typeof createAnalytics>, from: number, to: number): void {
	for (let i = from; i <= to; i++) analytics.track(`e${i}`);
}

beforeEach(() => {
	vi.useFakeTimers();
});

afterEach(() => {
	vi.useRealTimers();
});

describe("by size", () => {
	it("sends a full batch inside waitUntil, after the caller's synchronous code, then waits for the interval", async () => {
		const { ctx, queue, analytics } = setup({ batchSize: 3, flushInterval: 10_000 });

		track(analytics, 1, 2);
		expect(ctx.waited).toHaveLength(1); // the interval timer's wait
		track(analytics, 3, 3);
		expect(ctx.waited).toHaveLength(2); // and the send
		expect(queue.attempts).toBe(0);
		await ctx.waited[1];
		expect(sent(queue)).toEqual([["e1", "e2", "e3"]]);

		track(analytics, 4, 4);
		await vi.advanceTimersByTimeAsync(9_999);
		expect(sent(queue)).toEqual([["e1", "e2", "e3"]]);
		await vi.advanceTimersByTimeAsync(1);
		await ctx.settle();
		expect(sent(queue)).toEqual([["e1", "e2", "e3"], ["e4"]]);
		expect(ctx.waited).toHaveLength(4);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 4, dropped: 0, failed: 0 });
	});

	it("sends batches one at a time, each of at most batchSize events", async () => {
		const { ctx, queue, analytics } = setup({ batchSize: 3, flushInterval: 0 });

		track(analytics, 1, 8);
		await ctx.settle();
		expect(sent(queue)).toEqual([
			["e1", "e2", "e3"],
			["e4", "e5", "e6"],
		]);
		expect(analytics.stats()).toEqual({ queued: 2, sent: 6, dropped: 0, failed: 0 });

		analytics.flush();
		await ctx.settle();
		expect(sent(queue)).toEqual([
			["e1", "e2", "e3"],
			["e4", "e5", "e6"],
			["e7", "e8"],
		]);
	});

	it("defaults to batches of 20", async () => {
		const { ctx, queue, analytics } = setup({ flushInterval: 0 });
		track(analytics, 1, 45);
		await ctx.settle();
		expect(sent(queue).map((names) => names.length)).toEqual([20, 20]);
		analytics.flush();
		await ctx.settle();
		expect(sent(queue).map((names) => names.length)).toEqual([20, 20, 5]);
	});
});

describe("by interval", () => {
	it("sends a partial batch flushInterval after its first event, and the timer's wait is held by waitUntil", async () => {
		const { ctx, queue, analytics } = setup({ batchSize: 10, flushInterval: 1_000 });

		analytics.track("e1");
		await vi.advanceTimersByTimeAsync(600);
		analytics.track("e2");
		await vi.advanceTimersByTimeAsync(399);
		expect(queue.attempts).toBe(0);
		await vi.advanceTimersByTimeAsync(1);
		await ctx.settle();

		expect(sent(queue)).toEqual([["e1", "e2"]]);
		expect(ctx.waited).toHaveLength(2); // the timer's wait, then the send it started
		expect(vi.getTimerCount()).toBe(0);
	});

	it("defaults to 1000 ms", async () => {
		const { ctx, queue, analytics } = setup();
		analytics.track("e1");
		await vi.advanceTimersByTimeAsync(999);
		expect(queue.attempts).toBe(0);
		await vi.advanceTimersByTimeAsync(1);
		await ctx.settle();
		expect(sent(queue)).toEqual([["e1"]]);
	});
});

describe("flush()", () => {
	it("hands what is held to waitUntil at once and releases the interval timer", async () => {
		const { ctx, queue, analytics } = setup({ flushInterval: 60_000 });

		track(analytics, 1, 3);
		analytics.flush();
		expect(ctx.waited).toHaveLength(2);
		await ctx.settle(); // returns without moving time: the timer's wait was released
		expect(sent(queue)).toEqual([["e1", "e2", "e3"]]);
		expect(vi.getTimerCount()).toBe(0);

		analytics.flush();
		expect(ctx.waited).toHaveLength(2); // nothing held, nothing to do
	});

	it("sends events tracked while a send is in flight in the same drain", async () => {
		const { ctx, queue, analytics } = setup({ batchSize: 2, flushInterval: 0 });
		track(analytics, 1, 2);
		await Promise.resolve(); // the drain starts and its first send is under way
		track(analytics, 3, 5);
		analytics.flush();
		await ctx.settle();
		expect(sent(queue)).toEqual([["e1", "e2"], ["e3", "e4"], ["e5"]]);
		expect(ctx.waited).toHaveLength(1);
	});
});

describe("maxQueue", () => {
	it("drops the oldest held events beyond it and counts them", async () => {
		const { ctx, queue, analytics, errors } = setup({ maxQueue: 5, flushInterval: 0 });

		track(analytics, 1, 8);
		expect(analytics.stats()).toEqual({ queued: 5, sent: 0, dropped: 3, failed: 0 });
		analytics.flush();
		await ctx.settle();

		expect(sent(queue)).toEqual([["e4", "e5", "e6", "e7", "e8"]]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 5, dropped: 3, failed: 0 });
		expect(errors).toEqual([]);
	});

	it("holds events while a slow send is in flight, dropping the oldest held ones", async () => {
		const ctx = new RecordingContext();
		const gate = deferred();
		const bodies: unknown[] = [];
		const queue = {
			async sendBatch(messages: Iterable<{ body: unknown }>) {
				await gate.promise;
				for (const message of messages) bodies.push(JSON.parse(message.body as string));
			},
		};
		const analytics = createAnalytics(ctx, { queue, tenant: "tenant-b" }, { batchSize: 2, maxQueue: 3, flushInterval: 0 });

		track(analytics, 1, 2);
		await Promise.resolve();
		track(analytics, 3, 7);
		expect(analytics.stats()).toEqual({ queued: 5, sent: 0, dropped: 2, failed: 0 });
		gate.resolve();
		analytics.flush();
		await ctx.settle();

		expect(bodies.map((body) => (body as { events: { event: string }[] }).events.map((event) => event.event))).toEqual([
			["e1", "e2"],
			["e5", "e6"],
			["e7"],
		]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 5, dropped: 2, failed: 0 });
	});
});
