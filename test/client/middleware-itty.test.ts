// Request analytics with itty-router 5's hooks (withAnalytics): the method, the route pattern, the
// status, the duration and thrown errors are recorded; whatever analytics does, the response is the same.
import { AutoRouter, error, Router, StatusError, type IRequest } from "itty-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { withAnalytics, type Analytics, type AnalyticsOptions, type Transport } from "../../src/client/index";
import { APP_BASE, errorEvent, errorLog, MemoryQueue, recorded, RecordingContext } from "./helpers";

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
		const response = await router.fetch(new Request(APP_BASE + path, { method }), {}, ctx);
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
				route: "/v1/items/:id",
				properties: { method: "GET", status: 200 },
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
				route: "/v1/items",
				properties: { method: "POST", status: 500, error: "Error" },
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
				route: "/v1/items/:id",
				properties: { method: "DELETE", status: 404, error: "Error" },
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
				route: "(unmatched)",
				properties: { method: "GET", status: 404 },
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

		await expect(router.fetch(new Request(`${APP_BASE}/v1/things/1`), {}, ctx)).rejects.toBe(thrown);
		await ctx.settle();
		expect(recorded(queue)).toEqual([
			{
				event: "$request",
				route: "/v1/things/:id",
				properties: { method: "GET", status: 500, error: "TypeError" },
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
