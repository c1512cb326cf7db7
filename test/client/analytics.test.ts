// What each call records, what the send does to it (defaults, redaction, validation), and that
// nothing ever throws into the caller. Sends go to an in-memory queue; the transports have their own files.
import { afterEach, describe, expect, it, vi } from "vitest";
import { createAnalytics, InvalidEventError } from "../../src/client/index";
import { IDS_PER_POOL, uuidv7 } from "../../src/shared/ids";
import { errorLog, MemoryQueue, RecordingContext, UUID_V7 } from "./helpers";

/** A fixed instant, on the real clock's minute, so the edge's ±35 days / 5 minutes checks pass. */
const T = Date.now() - (Date.now() % 60_000);

function setup(options: Parameters<typeof createAnalytics>[2] = {}) {
	const ctx = new RecordingContext();
	const queue = new MemoryQueue();
	const log = errorLog();
	const analytics = createAnalytics(ctx, { queue, tenant: "tenant-a" }, { onError: log.onError, ...options });
	return { ctx, queue, analytics, errors: log.errors };
}

/** The events without their random ids, after checking each id is a UUIDv7 of its timestamp. */
function withoutIds(events: { id: string; timestamp: number }[]): unknown[] {
	return events.map(({ id, ...rest }) => {
		expect(id).toMatch(UUID_V7);
		expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(rest.timestamp);
		return rest;
	});
}

async function sha256Hex16(text: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
	return [...digest.slice(0, 8)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

afterEach(() => {
	vi.useRealTimers();
	vi.restoreAllMocks();
});

describe("what each call records", () => {
	it("queues one EventsMessage per batch, in the queue shape, with usage in micro-units", async () => {
		vi.useFakeTimers({ toFake: ["Date"], now: T });
		const { ctx, queue, analytics, errors } = setup({ sessionId: "s-1" });

		analytics.track("signup", { plan: "pro" });
		analytics.identify("user-1", { email_domain: "example.com" });
		analytics.usage("api_calls", 2.5, "call");
		analytics.usage("storage", 0.1);
		analytics.trackPerformance("render", 12.5, { view: "home" });
		analytics.track("no_properties");
		analytics.flush();
		await ctx.settle();

		expect(errors).toEqual([]);
		expect(queue.batches).toHaveLength(1);
		const [message] = queue.batches[0]!;
		expect({ v: message!.v, tenant: message!.tenant }).toEqual({ v: 1, tenant: "tenant-a" });
		expect(withoutIds(message!.events)).toEqual([
			{ event: "signup", timestamp: T, sessionId: "s-1", properties: { plan: "pro" } },
			{ event: "$identify", timestamp: T, userId: "user-1", sessionId: "s-1", properties: { email_domain: "example.com" } },
			{
				event: "$usage",
				timestamp: T,
				userId: "user-1",
				sessionId: "s-1",
				usage: { sku: "api_calls", unit: "call", micros: 2_500_000 },
			},
			{ event: "$usage", timestamp: T, userId: "user-1", sessionId: "s-1", usage: { sku: "storage", unit: "unit", micros: 100_000 } },
			{
				event: "render",
				timestamp: T,
				userId: "user-1",
				sessionId: "s-1",
				properties: { view: "home" },
				performance: { duration: 12.5 },
			},
			{ event: "no_properties", timestamp: T, userId: "user-1", sessionId: "s-1" },
		]);
		expect(new Set(message!.events.map((event) => event.id)).size).toBe(6);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 6, dropped: 0, failed: 0 });
	});

	it("records an error as $error with name, message and a hash of its stack frames, counted as a 500", async () => {
		vi.useFakeTimers({ toFake: ["Date"], now: T });
		const { ctx, queue, analytics } = setup({ userId: "user-2" });
		const frames = "    at handler (src/app.ts:10:5)\n    at run (src/app.ts:20:3)";
		const first = new TypeError("order 17 not found");
		first.stack = `TypeError: order 17 not found\n${frames}`;
		const second = new TypeError("order 18 not found");
		second.stack = `TypeError: order 18 not found\n${frames}`;

		analytics.trackError(first, { route: "/orders/:id" });
		analytics.trackError(second);
		analytics.trackError("a thrown string");
		analytics.flush();
		await ctx.settle();

		const stackHash = await sha256Hex16("at handler (src/app.ts:10:5)\nat run (src/app.ts:20:3)");
		const base = { event: "$error", timestamp: T, userId: "user-2", performance: { statusCode: 500 } };
		expect(withoutIds(queue.events)).toEqual([
			{ ...base, properties: { route: "/orders/:id", name: "TypeError", message: "order 17 not found", stackHash } },
			{ ...base, properties: { name: "TypeError", message: "order 18 not found", stackHash } },
			{ ...base, properties: { name: "Error", message: "a thrown string", stackHash: null } },
		]);
	});

	it("adds defaults to every event and redacts keys at any depth, case-insensitively, leaving the caller's objects alone", async () => {
		const { ctx, queue, analytics } = setup({ defaults: { app: "web", release: "1.2.3" }, redact: ["password", "apiKey"] });
		const properties = { app: "mobile", user: { name: "ann", Password: "hunter2", keys: [{ APIKEY: "k-1", label: "ci" }] } };
		const original = structuredClone(properties);

		analytics.track("login", properties);
		analytics.identify("user-3", { password: "x" });
		analytics.usage("api_calls", 1);
		analytics.flush();
		await ctx.settle();

		expect(queue.events.map(({ event, properties: sent }) => ({ event, properties: sent }))).toEqual([
			{
				event: "login",
				properties: {
					app: "mobile",
					release: "1.2.3",
					user: { name: "ann", Password: "[redacted]", keys: [{ APIKEY: "[redacted]", label: "ci" }] },
				},
			},
			{ event: "$identify", properties: { app: "web", release: "1.2.3", password: "[redacted]" } },
			{ event: "$usage", properties: { app: "web", release: "1.2.3" } },
		]);
		expect(properties).toEqual(original);
	});

	it("gives every event its own UUIDv7, drawing on crypto once per pool of ids", () => {
		const getRandomValues = vi.spyOn(crypto, "getRandomValues");
		const ids = Array.from({ length: IDS_PER_POOL * 3 }, () => uuidv7(T));
		// However much of the current pool is left, three pools' worth of ids needs exactly three fills.
		expect(getRandomValues).toHaveBeenCalledTimes(3);
		expect(new Set(ids).size).toBe(IDS_PER_POOL * 3);
		for (const id of ids) expect(id).toMatch(UUID_V7);
		expect(ids[0]!.slice(0, 13)).toBe(`${T.toString(16).padStart(12, "0").slice(0, 8)}-${T.toString(16).padStart(12, "0").slice(8)}`);
	});

	it("does no serialization, validation or hashing in track(): that waits for the send", async () => {
		const { ctx, queue, analytics } = setup({ batchSize: 1000, redact: ["secret"] });
		const stringify = vi.spyOn(JSON, "stringify");
		const digest = vi.spyOn(crypto.subtle, "digest");
		for (let i = 0; i < 500; i++) analytics.track("hot", { i, secret: "s" });
		analytics.trackError(new Error("boom"));
		const during = { stringify: stringify.mock.calls.length, digest: digest.mock.calls.length, sent: queue.attempts };
		stringify.mockRestore();
		digest.mockRestore();

		expect(during).toEqual({ stringify: 0, digest: 0, sent: 0 });
		analytics.flush();
		await ctx.settle();
		expect(analytics.stats()).toEqual({ queued: 0, sent: 501, dropped: 0, failed: 0 });
		expect(queue.events[499]!.properties).toEqual({ i: 499, secret: "[redacted]" });
	});
});

describe("never throwing", () => {
	it("reports calls with bad arguments to onError, drops them and carries on", async () => {
		const { ctx, queue, analytics, errors } = setup();
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
		const { ctx, queue, analytics, errors } = setup();
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
