// What each call records (the queue shape, usage in micro-units, errors with a stack hash, defaults
// and redaction, UUIDv7 ids) and that track() defers all the work to the send. Sends go to an
// in-memory queue; the transports have their own files.
import { afterEach, describe, expect, it, vi } from "vitest";
import { IDS_PER_POOL, uuidv7 } from "../../src/shared/ids";
import { UUID_V7 } from "../helpers";
import { memoryClient, T } from "./helpers";

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
		const { ctx, queue, analytics, errors } = memoryClient({ sessionId: "s-1" });

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
		const { ctx, queue, analytics } = memoryClient({ userId: "user-2" });
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
		const { ctx, queue, analytics } = memoryClient({ defaults: { app: "web", release: "1.2.3" }, redact: ["password", "apiKey"] });
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
		const { ctx, queue, analytics } = memoryClient({ batchSize: 1000, redact: ["secret"] });
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
