// Request analytics and who a request is for: the route pattern as the event's own route, the end
// user's country from request.cf, and the request's customer from the customerId option, on the
// $request and $error events and on the handler's own.
import { AutoRouter, error, type IRequest } from "itty-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { instrument, withAnalytics, type Analytics, type IttyAnalyticsOptions } from "../../src/client/index";
import { APP_BASE, errorEvent, errorLog, MemoryQueue, recorded, RecordingContext } from "./helpers";

beforeEach(() => {
	vi.useFakeTimers({ toFake: ["Date"] });
});

afterEach(() => {
	vi.useRealTimers();
});

/** A request as Cloudflare's edge hands it to a Worker, with `cf` when given. */
function request(path: string, init: { method?: string; headers?: Record<string, string>; cf?: { country?: string } } = {}): Request {
	return new Request(APP_BASE + path, init);
}

describe("withAnalytics: route, country and customer", () => {
	function app(queue: MemoryQueue, options: Partial<IttyAnalyticsOptions> = {}) {
		const meter = withAnalytics({ transport: { queue, tenant: "t" }, catch: error, ...options });
		const router = AutoRouter<IRequest, [env: unknown, ctx: RecordingContext]>({
			before: [meter.before],
			catch: meter.catch,
			finally: [meter.finally],
		});
		router.get("/v1/items/:id", (req) => {
			const analytics = req.analytics as Analytics;
			analytics.usage("lookups", 1);
			analytics.track("item_shared", undefined, { customerId: "partner" });
			return { id: req.params.id };
		});
		router.post("/v1/items/:id", () => {
			throw new Error("database unavailable");
		});
		return router;
	}

	async function fetchThrough(router: ReturnType<typeof app>, req: Request) {
		const ctx = new RecordingContext();
		const response = await router.fetch(req, {}, ctx);
		await ctx.settle();
		return response.status;
	}

	const customerHeader = (req: Request) => req.headers.get("x-customer") ?? undefined;

	it("records the route pattern as the event's route, and the customer and country on every event of the request", async () => {
		const queue = new MemoryQueue();
		const status = await fetchThrough(
			app(queue, { customerId: customerHeader }),
			request("/v1/items/42", { headers: { "x-customer": "acme" }, cf: { country: "DE" } }),
		);

		expect(status).toBe(200);
		expect(recorded(queue)).toEqual([
			{ event: "$usage", customerId: "acme", country: "DE", usage: { sku: "lookups", unit: "unit", micros: 1_000_000 } },
			{ event: "item_shared", customerId: "partner", country: "DE" },
			{
				event: "$request",
				route: "/v1/items/:id",
				customerId: "acme",
				country: "DE",
				properties: { method: "GET", status: 200 },
				performance: { duration: 0, statusCode: 200 },
			},
		]);
	});

	it("puts the route, customer and country on the $error a 500 records", async () => {
		const queue = new MemoryQueue();
		const thrown = new Error("database unavailable");
		const status = await fetchThrough(
			app(queue, { customerId: "acme" }),
			request("/v1/items/7", { method: "POST", cf: { country: "T1" } }),
		);

		expect(status).toBe(500);
		expect(recorded(queue)).toEqual([
			{
				event: "$request",
				route: "/v1/items/:id",
				customerId: "acme",
				country: "T1",
				properties: { method: "POST", status: 500, error: "Error" },
				performance: { duration: 0, statusCode: 500 },
			},
			errorEvent("POST", "/v1/items/:id", thrown, { customerId: "acme", country: "T1" }),
		]);
	});

	it("records no customer or country when none can be had, the options' country without cf, and reports a customerId() that throws", async () => {
		const { errors, onError } = errorLog();
		const broken = new Error("no session store");
		const cases: [Partial<IttyAnalyticsOptions>, Request, Record<string, unknown>][] = [
			[{ customerId: customerHeader }, request("/v1/items/1"), {}],
			[{ customerId: customerHeader }, request("/v1/items/1", { headers: { "x-customer": "" }, cf: {} }), {}],
			[{ customerId: "acme" }, request("/v1/items/1", { cf: { country: "Germany" } }), { customerId: "acme" }],
			[{ country: "FR" }, request("/v1/items/1"), { country: "FR" }],
			[{ country: "FR" }, request("/v1/items/1", { cf: { country: "XX" } }), { country: "XX" }],
			[
				{
					customerId: () => {
						throw broken;
					},
					onError,
				},
				request("/v1/items/1", { cf: { country: "DE" } }),
				{ country: "DE" },
			],
		];

		for (const [options, req, fields] of cases) {
			const queue = new MemoryQueue();
			expect(await fetchThrough(app(queue, options), req)).toBe(200);
			const requestEvent = recorded(queue).at(-1);
			expect(requestEvent).toEqual({
				event: "$request",
				route: "/v1/items/:id",
				...fields,
				properties: { method: "GET", status: 200 },
				performance: { duration: 0, statusCode: 200 },
			});
		}
		expect(errors).toEqual([{ error: broken, info: { stage: "track", events: 0 } }]);
	});
});

describe("instrument: route, country and customer", () => {
	it("records route(), the customer from customerId(request) and the country from cf, on the handler's events too", async () => {
		const queue = new MemoryQueue();
		const handler = instrument(
			(req: Request) => {
				vi.advanceTimersByTime(30);
				(req as unknown as { analytics: Analytics }).analytics.usage("tokens", 3, "token");
				return new Response("ok", { status: 201 });
			},
			{
				transport: { queue, tenant: "t" },
				route: () => "/v1/complete",
				customerId: (req) => new URL(req.url).searchParams.get("customer") ?? undefined,
			},
		);
		const ctx = new RecordingContext();

		await handler(request("/v1/complete?customer=acme", { method: "POST", cf: { country: "JP" } }), {}, ctx);
		await ctx.settle();

		expect(recorded(queue)).toEqual([
			{ event: "$usage", customerId: "acme", country: "JP", usage: { sku: "tokens", unit: "token", micros: 3_000_000 } },
			{
				event: "$request",
				route: "/v1/complete",
				customerId: "acme",
				country: "JP",
				properties: { method: "POST", status: 201 },
				performance: { duration: 30, statusCode: 201 },
			},
		]);
	});

	it("cuts a route longer than the field's 200 characters, so the request still counts, and falls back from an empty route()", async () => {
		const queue = new MemoryQueue();
		const long = `/${"a".repeat(300)}`;
		const handlers = [
			instrument(() => new Response("ok"), { transport: { queue, tenant: "t" } }),
			instrument(() => new Response("ok"), { transport: { queue, tenant: "t" }, route: () => "" }),
		];
		const ctx = new RecordingContext();

		await handlers[0]!(request(long), {}, ctx);
		await handlers[1]!(request("/v1/users/12"), {}, ctx);
		await ctx.settle();

		expect(recorded(queue).map((event) => (event as { route?: string }).route)).toEqual([long.slice(0, 200), "/v1/users/:id"]);
	});
});
