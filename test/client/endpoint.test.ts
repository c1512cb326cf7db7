// The endpoint transport for real: POST /v1/events on the Worker's own fetch handler, with retries
// (backoff, Retry-After, no retry for a 4xx) and a resend after a lost answer deduplicated downstream.
import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createAnalytics, SendError, type FetchLike } from "../../src/client/index";
import { createTenant } from "../helpers";
import { errorLog, RecordingContext, reports } from "./helpers";

const ENDPOINT = "https://meterline.test";
const none = { count: 0, sum: 0, min: null, max: null };
const worker: FetchLike = (request) => exports.default.fetch(request);

interface Attempt {
	at: number;
	method: string;
	url: string;
	authorization: string | null;
	contentType: string | null;
	body: { events: Record<string, unknown>[] };
}

/** A fetch that records each attempt, answers the first ones with `script`, then calls the Worker. */
function scriptedFetch(script: ((request: Request) => Promise<Response>)[] = []) {
	const attempts: Attempt[] = [];
	const fetch: FetchLike = async (request) => {
		const body = (await request.clone().json()) as Attempt["body"];
		attempts.push({
			at: Date.now(),
			method: request.method,
			url: request.url,
			authorization: request.headers.get("authorization"),
			contentType: request.headers.get("content-type"),
			body,
		});
		const scripted = script.shift();
		return scripted ? scripted(request) : worker(request);
	};
	return { fetch, attempts };
}

/** Moves fake time forward in small steps, letting real I/O run between them, until every waitUntil settled. */
async function settleWithFakeTime(ctx: RecordingContext): Promise<void> {
	let done = false;
	const settled = ctx.settle().finally(() => (done = true));
	while (!done) await vi.advanceTimersByTimeAsync(50);
	await settled;
}

afterEach(() => {
	vi.useRealTimers();
});

describe("endpoint transport", () => {
	it("POSTs {endpoint}/v1/events with the Bearer key and the HTTP event shape; the events reach the reports", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		const { fetch, attempts } = scriptedFetch();
		const analytics = createAnalytics(
			ctx,
			{ endpoint: `${ENDPOINT}/`, writeKey: tenant.writeKey, fetch },
			{ onError, userId: "user-9" },
		);

		analytics.track("search", { q: "boots" });
		analytics.usage("searches", 1, "query");
		analytics.trackError(new RangeError("page out of range"));
		analytics.flush();
		await ctx.settle();

		expect(errors).toEqual([]);
		expect(
			attempts.map(({ at: _at, body, ...request }) => ({
				...request,
				events: body.events.map(({ id: _id, timestamp: _t, ...event }) => event),
			})),
		).toEqual([
			{
				method: "POST",
				url: "https://meterline.test/v1/events",
				authorization: `Bearer ${tenant.writeKey}`,
				contentType: "application/json",
				events: [
					{ event: "search", userId: "user-9", properties: { q: "boots" } },
					{ event: "$usage", userId: "user-9", usage: { sku: "searches", quantity: 1, unit: "query" } },
					{
						event: "$error",
						userId: "user-9",
						properties: {
							name: "RangeError",
							message: "page out of range",
							stackHash: expect.stringMatching(/^[0-9a-f]{16}$/),
						},
						performance: { statusCode: 500 },
					},
				],
			},
		]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 3, dropped: 0, failed: 0 });

		const { stats, usage } = await reports(tenant, 3);
		expect(stats).toEqual({
			search: { count: 1, errors: 0, duration: none },
			$usage: { count: 1, errors: 0, duration: none },
			$error: { count: 1, errors: 1, duration: none },
		});
		expect(usage).toEqual([{ sku: "searches", unit: "query", quantity: 1, events: 1 }]);
	});

	it("retries a 5xx with exponential backoff, resending the same ids", async () => {
		const tenant = await createTenant();
		vi.useFakeTimers();
		const ctx = new RecordingContext();
		const unavailable = async () => new Response("busy", { status: 503 });
		const { fetch, attempts } = scriptedFetch([unavailable, unavailable]);
		const analytics = createAnalytics(ctx, { endpoint: ENDPOINT, writeKey: tenant.writeKey, fetch }, { retryDelay: 100 });

		analytics.track("a");
		analytics.track("b");
		const start = Date.now();
		analytics.flush();
		await settleWithFakeTime(ctx);

		expect(attempts.map((attempt) => attempt.at - start)).toEqual([0, 100, 300]);
		const ids = attempts.map((attempt) => attempt.body.events.map((event) => event.id));
		expect(ids[1]).toEqual(ids[0]);
		expect(ids[2]).toEqual(ids[0]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 2, dropped: 0, failed: 0 });
	});

	it("waits exactly as long as a 429's Retry-After asks before retrying", async () => {
		const tenant = await createTenant();
		vi.useFakeTimers();
		const ctx = new RecordingContext();
		const limited = async () => new Response("slow down", { status: 429, headers: { "retry-after": "2" } });
		const { fetch, attempts } = scriptedFetch([limited]);
		const analytics = createAnalytics(ctx, { endpoint: ENDPOINT, writeKey: tenant.writeKey, fetch });

		analytics.track("a");
		const start = Date.now();
		analytics.flush();
		await settleWithFakeTime(ctx);

		expect(attempts.map((attempt) => attempt.at - start)).toEqual([0, 2000]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 1, dropped: 0, failed: 0 });
	});

	it("gives up at once when Retry-After is longer than maxRetryDelay, rather than retry too soon", async () => {
		vi.useFakeTimers();
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		const limited = async () => new Response("rate limited", { status: 429, headers: { "retry-after": "60" } });
		const { fetch, attempts } = scriptedFetch([limited]);
		const analytics = createAnalytics(ctx, { endpoint: ENDPOINT, writeKey: "unused", fetch }, { onError, maxRetryDelay: 10_000 });

		analytics.track("a");
		analytics.flush();
		await settleWithFakeTime(ctx);

		expect(attempts).toHaveLength(1);
		const [{ error, info }] = errors as [(typeof errors)[number]];
		expect(error).toBeInstanceOf(SendError);
		expect({
			status: (error as SendError).status,
			retryAfter: (error as SendError).retryAfter,
			message: (error as SendError).message,
			info,
		}).toEqual({
			status: 429,
			retryAfter: 60_000,
			message: "POST https://meterline.test/v1/events answered 429: rate limited",
			info: { stage: "send", events: 1 },
		});
		expect(analytics.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 1 });
	});

	it("does not retry a 4xx other than 429", async () => {
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		const { fetch, attempts } = scriptedFetch();
		const analytics = createAnalytics(ctx, { endpoint: ENDPOINT, writeKey: "ml_live_not-a-real-key", fetch }, { onError });

		analytics.track("a");
		analytics.track("b");
		analytics.flush();
		await ctx.settle();

		expect(attempts).toHaveLength(1);
		expect(
			errors.map(({ error, info }) => ({ status: (error as SendError).status, message: (error as SendError).message, info })),
		).toEqual([
			{
				status: 401,
				message:
					'POST https://meterline.test/v1/events answered 401: {"error":{"code":"unauthorized","message":"Unknown or revoked key"}}',
				info: { stage: "send", events: 2 },
			},
		]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 2 });
	});

	it("retries after a network error; when the lost attempt had arrived, the aggregator counts its events once", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const { errors, onError } = errorLog();
		// The first attempt reaches the Worker, but its answer is lost on the way back.
		const lostAnswer = async (request: Request) => {
			expect((await worker(request)).status).toBe(202);
			throw new TypeError("Network connection lost.");
		};
		const { fetch, attempts } = scriptedFetch([lostAnswer]);
		const analytics = createAnalytics(ctx, { endpoint: ENDPOINT, writeKey: tenant.writeKey, fetch }, { onError, retryDelay: 1 });

		analytics.track("order_placed");
		analytics.usage("orders", 1, "order");
		analytics.flush();
		await ctx.settle();

		expect(attempts).toHaveLength(2);
		expect(errors).toEqual([]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 2, dropped: 0, failed: 0 });
		const { stats, usage, duplicatesDropped } = await reports(tenant, 4);
		expect(stats).toEqual({ order_placed: { count: 1, errors: 0, duration: none }, $usage: { count: 1, errors: 0, duration: none } });
		expect(usage).toEqual([{ sku: "orders", unit: "order", quantity: 1, events: 1 }]);
		expect(duplicatesDropped).toBe(2);
	});

	it("splits a batch into bodies of at most 1 MiB and 1000 events", async () => {
		const tenant = await createTenant();
		const ctx = new RecordingContext();
		const { fetch, attempts } = scriptedFetch();
		const analytics = createAnalytics(
			ctx,
			{ endpoint: ENDPOINT, writeKey: tenant.writeKey, fetch },
			{ batchSize: 1000, maxQueue: 2000, flushInterval: 0 },
		);

		for (let i = 0; i < 40; i++) analytics.track("blob", { i, blob: "x".repeat(30_000) });
		analytics.flush();
		await ctx.settle();
		for (let i = 0; i < 1001; i++) analytics.track("small");
		analytics.flush();
		await ctx.settle();

		expect(attempts.map((attempt) => attempt.body.events.length)).toEqual([34, 6, 1000, 1]);
		expect(attempts.map((attempt) => new TextEncoder().encode(JSON.stringify(attempt.body)).byteLength <= 1_048_576)).toEqual([
			true,
			true,
			true,
			true,
		]);
		expect(analytics.stats()).toEqual({ queued: 0, sent: 1041, dropped: 0, failed: 0 });
	});
});
