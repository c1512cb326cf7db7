// Request analytics with instrument(): the route pattern (from route(), or the path with ids
// masked), the status, the duration and thrown errors are recorded, and the handler's own response
// is returned untouched even when analytics cannot work at all.
import { error } from "itty-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { analyticsOf, instrument } from "../../src/client/index";
import { APP_BASE, errorEvent, errorLog, MemoryQueue, recorded, RecordingContext } from "./helpers";

beforeEach(() => {
	vi.useFakeTimers({ toFake: ["Date"] });
});

afterEach(() => {
	vi.useRealTimers();
});

describe("instrument", () => {
	const queue = () => new MemoryQueue();

	it("records the pattern from route(), the status and the duration, and returns the handler's own response", async () => {
		const events = queue();
		const answer = new Response("created", { status: 201 });
		const handler = instrument(
			async (request: Request) => {
				vi.advanceTimersByTime(75);
				analyticsOf(request)?.track("signup");
				return answer;
			},
			{ transport: (env: { tenant: string }) => ({ queue: events, tenant: env.tenant }), route: () => "/v1/signup" },
		);
		const ctx = new RecordingContext();

		const response = await handler(new Request(`${APP_BASE}/v1/signup?ref=x`, { method: "POST" }), { tenant: "t" }, ctx);
		await ctx.settle();

		expect(response).toBe(answer);
		expect(recorded(events)).toEqual([
			{ event: "signup" },
			{
				event: "$request",
				route: "/v1/signup",
				properties: { method: "POST", status: 201 },
				performance: { duration: 75, statusCode: 201 },
			},
		]);
		expect(events.batches[0]![0]!.tenant).toBe("t");
	});

	it("without route(), records the path with numeric and UUID segments as :id", async () => {
		const events = queue();
		const handler = instrument(() => new Response("ok"), { transport: { queue: events, tenant: "t" }, event: "http_request" });
		const ctx = new RecordingContext();

		await handler(new Request(`${APP_BASE}/users/123/orders/0192E4A0-0000-7000-8000-00000000E2E1/items/v2`), {}, ctx);
		await ctx.settle();

		expect(recorded(events)).toEqual([
			{
				event: "http_request",
				route: "/users/:id/orders/:id/items/v2",
				properties: { method: "GET", status: 200 },
				performance: { duration: 0, statusCode: 200 },
			},
		]);
	});

	it("records a thrown error as a 500 and rethrows the same error", async () => {
		const events = queue();
		const thrown = new RangeError("too many items");
		const handler = instrument(
			(): Response => {
				vi.advanceTimersByTime(10);
				throw thrown;
			},
			{ transport: { queue: events, tenant: "t" }, route: () => "/v1/cart" },
		);
		const ctx = new RecordingContext();

		await expect(handler(new Request(`${APP_BASE}/v1/cart`, { method: "PUT" }), {}, ctx)).rejects.toBe(thrown);
		await ctx.settle();
		expect(recorded(events)).toEqual([
			{
				event: "$request",
				route: "/v1/cart",
				properties: { method: "PUT", status: 500, error: "RangeError" },
				performance: { duration: 10, statusCode: 500 },
			},
			errorEvent("PUT", "/v1/cart", thrown),
		]);
	});

	it("returns the handler's response untouched when analytics cannot work at all", async () => {
		const { errors, onError } = errorLog();
		const answer = new Response("fine");
		const handed: Promise<unknown>[] = [];
		const ctx = {
			waitUntil(promise: Promise<unknown>) {
				handed.push(promise);
				throw new Error("no waitUntil here");
			},
		};
		const broken = new Error("no binding");
		const handlers = [
			instrument(() => answer, {
				transport: () => {
					throw broken;
				},
				onError,
			}),
			instrument(() => answer, {
				transport: { queue: new MemoryQueue(Infinity), tenant: "t" },
				retries: 0,
				route: () => {
					throw new Error("route() failed");
				},
				onError,
			}),
			instrument(() => answer, {
				transport: { queue: new MemoryQueue(), tenant: "t" },
				onError: () => {
					throw broken;
				},
			}),
		];

		for (const handler of handlers) {
			expect(await handler(new Request(`${APP_BASE}/x`), {}, ctx)).toBe(answer);
			// What the context refused still ran: wait for it before the next handler.
			for (let seen = 0; seen < handed.length; seen++) await handed[seen];
		}
		const refused = { message: "no waitUntil here", info: { stage: "schedule", events: 0 } };
		expect(errors.map(({ error: err, info }) => ({ message: (err as Error).message, info }))).toEqual([
			refused,
			refused,
			{ message: "no binding", info: { stage: "send", events: 1 } },
			refused,
			refused,
			{ message: "queue unavailable", info: { stage: "send", events: 1 } },
		]);
	});
});
