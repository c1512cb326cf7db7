// Request analytics: itty-router 5 hooks and instrument() record the method, the route pattern,
// the status, the duration and thrown errors; whatever analytics does, the response is the same.
import { AutoRouter, error, Router, StatusError, type IRequest } from "itty-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { analyticsOf, instrument, withAnalytics, type Analytics, type AnalyticsOptions, type Transport } from "../../src/client/index";
import type { QueuedEvent } from "../../src/event/model";
import { errorLog, MemoryQueue, RecordingContext } from "./helpers";

const BASE = "https://app.test";

/** Each event without its id and timestamp, which other tests check. */
const recorded = (queue: MemoryQueue) => queue.events.map(({ id: _id, timestamp: _timestamp, ...event }: QueuedEvent) => event);

function errorEvent(method: string, route: string, thrown: Error) {
	return {
		event: "$error",
		properties: { method, route, name: thrown.name, message: thrown.message, stackHash: expect.stringMatching(/^[0-9a-f]{16}$/) },
		performance: { statusCode: 500 },
	};
}

beforeEach(() => {
	vi.useFakeTimers({ toFake: ["Date"] });
});

afterEach(() => {
	vi.useRealTimers();
});

describe("withAnalytics (itty-router 5)", () => {
	function app(transport: () => Transport, options: AnalyticsOptions = {}) {
		const meter = withAnalytics({ transport, catch: error, ...options });
		const router = AutoRouter<IRequest, [env: unknown, ctx: RecordingContext]>({
			before: [meter.before],
			catch: meter.catch,
			finally: [meter.finally],
		});
		router.get("/v1/items/:id", (request) => {
			vi.advanceTimersByTime(125);
			(request.analytics as Analytics).track("item_viewed", { id: request.params.id });
			return { id: request.params.id };
		});
		router.post("/v1/items", () => {
			vi.advanceTimersByTime(40);
			throw new Error("database unavailable");
		});
		router.delete("/v1/items/:id", () => {
			throw new StatusError(404, "No such item");
		});
		return router;
	}

	async function fetchThrough(router: ReturnType<typeof app>, method: string, path: string) {
		const ctx = new RecordingContext();
		const response = await router.fetch(new Request(BASE + path, { method }), {}, ctx);
		await ctx.settle();
		return { response, status: response.status, body: await response.text() };
	}

	it("records method, route pattern (not the path), status and duration, with the handler's own events", async () => {
		const queue = new MemoryQueue();
		const { status, body } = await fetchThrough(
			app(() => ({ queue, tenant: "t" })),
			"GET",
			"/v1/items/42",
		);

		expect({ status, body }).toEqual({ status: 200, body: '{"id":"42"}' });
		expect(recorded(queue)).toEqual([
			{ event: "item_viewed", properties: { id: "42" } },
			{
				event: "$request",
				properties: { method: "GET", route: "/v1/items/:id", status: 200 },
				performance: { duration: 125, statusCode: 200 },
			},
		]);
	});

	it("records a thrown error that made a 500, and the catch's response is unchanged", async () => {
		const queue = new MemoryQueue();
		const { status, body } = await fetchThrough(
			app(() => ({ queue, tenant: "t" })),
			"POST",
			"/v1/items",
		);

		expect({ status, body }).toEqual({ status: 500, body: '{"status":500,"error":"database unavailable"}' });
		expect(recorded(queue)).toEqual([
			{
				event: "$request",
				properties: { method: "POST", route: "/v1/items", status: 500, error: "Error" },
				performance: { duration: 40, statusCode: 500 },
			},
			errorEvent("POST", "/v1/items", new Error("database unavailable")),
		]);
	});

	it("notes a thrown StatusError on the request (itty keeps Error's name) without counting its 4xx as an error", async () => {
		const queue = new MemoryQueue();
		const { status } = await fetchThrough(
			app(() => ({ queue, tenant: "t" })),
			"DELETE",
			"/v1/items/7",
		);

		expect(status).toBe(404);
		expect(recorded(queue)).toEqual([
			{
				event: "$request",
				properties: { method: "DELETE", route: "/v1/items/:id", status: 404, error: "Error" },
				performance: { duration: 0, statusCode: 404 },
			},
		]);
	});

	it("records a request no route matched under a fixed name, never its path", async () => {
		const queue = new MemoryQueue();
		const { status } = await fetchThrough(
			app(() => ({ queue, tenant: "t" })),
			"GET",
			"/wp-admin/setup.php",
		);

		expect(status).toBe(404);
		expect(recorded(queue)).toEqual([
			{
				event: "$request",
				properties: { method: "GET", route: "(unmatched)", status: 404 },
				performance: { duration: 0, statusCode: 404 },
			},
		]);
	});

	it("records an error that escapes a router without a catch, and the error still escapes", async () => {
		const queue = new MemoryQueue();
		const meter = withAnalytics({ transport: { queue, tenant: "t" } });
		const router = Router({ before: [meter.before], catch: meter.catch, finally: [meter.finally] });
		const thrown = new TypeError("bad input");
		router.get("/v1/things/:id", () => {
			throw thrown;
		});
		const ctx = new RecordingContext();

		await expect(router.fetch(new Request(`${BASE}/v1/things/1`), {}, ctx)).rejects.toBe(thrown);
		await ctx.settle();
		expect(recorded(queue)).toEqual([
			{
				event: "$request",
				properties: { method: "GET", route: "/v1/things/:id", status: 500, error: "TypeError" },
				performance: { duration: 0, statusCode: 500 },
			},
			errorEvent("GET", "/v1/things/:id", thrown),
		]);
	});

	it("leaves every response as it was when analytics fails: a throwing transport, a failing queue, a throwing onError", async () => {
		const plain = app(() => ({ queue: new MemoryQueue(), tenant: "t" }));
		const { errors, onError } = errorLog();
		const broken = new Error("no binding");
		const failing = new MemoryQueue(Infinity);
		const variants = [
			app(
				() => {
					throw broken;
				},
				{ onError },
			),
			app(() => ({ queue: failing, tenant: "t" }), {
				retries: 0,
				onError: () => {
					throw new Error("hook failure");
				},
			}),
		];

		for (const [method, path] of [
			["GET", "/v1/items/42"],
			["POST", "/v1/items"],
			["DELETE", "/v1/items/7"],
			["GET", "/nowhere"],
		] as const) {
			const expected = await fetchThrough(plain, method, path);
			for (const router of variants) {
				const { status, body, response } = await fetchThrough(router, method, path);
				expect({ status, body, type: response.headers.get("content-type") }).toEqual({
					status: expected.status,
					body: expected.body,
					type: expected.response.headers.get("content-type"),
				});
			}
		}
		// The events each request recorded are lost, and onError hears why.
		expect(errors.map(({ error: err, info }) => ({ err, info }))).toEqual(
			[2, 2, 1, 1].map((events) => ({ err: broken, info: { stage: "send", events } })),
		);
		expect(failing.attempts).toBe(4);
	});
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

		const response = await handler(new Request(`${BASE}/v1/signup?ref=x`, { method: "POST" }), { tenant: "t" }, ctx);
		await ctx.settle();

		expect(response).toBe(answer);
		expect(recorded(events)).toEqual([
			{ event: "signup" },
			{
				event: "$request",
				properties: { method: "POST", route: "/v1/signup", status: 201 },
				performance: { duration: 75, statusCode: 201 },
			},
		]);
		expect(events.batches[0]![0]!.tenant).toBe("t");
	});

	it("without route(), records the path with numeric and UUID segments as :id", async () => {
		const events = queue();
		const handler = instrument(() => new Response("ok"), { transport: { queue: events, tenant: "t" }, event: "http_request" });
		const ctx = new RecordingContext();

		await handler(new Request(`${BASE}/users/123/orders/0192E4A0-0000-7000-8000-00000000E2E1/items/v2`), {}, ctx);
		await ctx.settle();

		expect(recorded(events)).toEqual([
			{
				event: "http_request",
				properties: { method: "GET", route: "/users/:id/orders/:id/items/v2", status: 200 },
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

		await expect(handler(new Request(`${BASE}/v1/cart`, { method: "PUT" }), {}, ctx)).rejects.toBe(thrown);
		await ctx.settle();
		expect(recorded(events)).toEqual([
			{
				event: "$request",
				properties: { method: "PUT", route: "/v1/cart", status: 500, error: "RangeError" },
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
			expect(await handler(new Request(`${BASE}/x`), {}, ctx)).toBe(answer);
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
