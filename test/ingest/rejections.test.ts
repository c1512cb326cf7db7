// Partial acceptance on the Segment and PostHog APIs: a batch's valid events are counted exactly once
// through the real queue and aggregator, each invalid one is rejected alone, counted in the metrics
// and listed by GET /v1/rejections (content, limits, paging, retention, access); POST /v1/events
// stays all-or-nothing.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { REJECTION_LIMITS } from "../../src/sinks/d1/rejections";
import { metricsWith } from "../faults/fixtures";
import { ADMIN_TOKEN, call, createTenant, getJson, type TestTenant } from "../helpers/api";
import { freezeClockAt } from "../helpers/clock";
import { deferred, RecordingQueue } from "../helpers/queues";
import { eventsRequest, fetchWith, ingest, jsonBytes } from "../producer/helpers";
import { expectError } from "../security/helpers";
import { apiError, basicAuth, post, rejectionsOf, rejectionsPage, send, settled, type SendResult } from "./helpers";

const DAY = 86_400_000;
const SEGMENT_TYPES = "track, identify, page, screen, group, alias";

afterEach(() => {
	vi.useRealTimers();
	vi.restoreAllMocks();
});

/** Sends with Date frozen at the current time, so the stored receivedAt is known exactly. */
async function sendNow(request: Request): Promise<SendResult & { at: string }> {
	const at = new Date(freezeClockAt(Date.now())).toISOString();
	try {
		return { ...(await send(request)), at };
	} finally {
		vi.useRealTimers();
	}
}

const segment = (tenant: TestTenant, batch: unknown[]) => post("/v1/batch", { batch }, { authorization: basicAuth(tenant.writeKey) });
const posthog = (tenant: TestTenant, batch: unknown[]) => post("/batch/", { api_key: tenant.writeKey, batch });
/** A PostHog event the validator refuses: its name is a number. */
const badPostHog = (i: number) => ({ event: 7, distinct_id: "u", uuid: `bad-${i}` });

/** What is kept of a message whose JSON passes 8 KB: its start, then the marker, 8 KB in all. */
function truncated(message: unknown): string {
	const marker = `…[truncated from ${jsonBytes(message)} bytes]`;
	return JSON.stringify(message).slice(0, REJECTION_LIMITS.bodyBytes - new TextEncoder().encode(marker).byteLength) + marker;
}

async function storedCount(tenant: string, where = "1"): Promise<number> {
	const row = await env.DB.prepare(`SELECT count(*) AS n FROM rejections WHERE tenant = ?1 AND ${where}`)
		.bind(tenant)
		.first<{ n: number }>();
	return row!.n;
}

describe("Segment", () => {
	it("accepts a batch's valid events, counts them once end to end, and lists each invalid one with why", async () => {
		const tenant = await createTenant();
		const order = {
			type: "track",
			messageId: "seg-ok-1",
			event: "Order Completed",
			userId: "u1",
			properties: { usage: { sku: "api_calls", quantity: 2, unit: "call" } },
		};
		const big = { type: "track", messageId: "seg-big", event: "big", properties: { pad: "x".repeat(33_000) } };
		const batch = [
			order,
			"not an object",
			{ type: "purchase", messageId: "seg-bad-type", event: "x" },
			{
				type: "track",
				messageId: "seg-bad-qty",
				event: "Order Completed",
				userId: "u1",
				properties: { usage: { sku: "api_calls", quantity: -1 } },
			},
			{ type: "identify", messageId: "seg-ok-2", userId: "u2", traits: { plan: "pro" } },
			{ type: "track", messageId: 42, userId: "u3", properties: { password: "hunter2" } },
			big,
			// Resent within the batch: the aggregator drops it.
			order,
		];
		const result = await sendNow(segment(tenant, batch));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { success: true } });
		expect(result.events.map((event) => event.id)).toEqual(["seg-ok-1", "seg-ok-2", "seg-ok-1"]);

		const { counts, usage, metrics } = await settled(tenant, 3);
		expect(counts).toEqual({ "Order Completed": 1, $identify: 1 });
		expect(usage).toEqual([{ sku: "api_calls", unit: "call", quantity: 2, events: 1 }]);
		expect(metrics).toMatchObject({ received: 3, rejected: 5, aggregated: 2, duplicatesDropped: metrics.consumed - 2 });

		const at = { receivedAt: result.at, source: "segment" };
		expect(await rejectionsOf(tenant)).toEqual([
			{
				...at,
				eventId: "seg-big",
				place: "batch[6]",
				issues: [{ path: "batch[6]", message: `is ${jsonBytes(big)} bytes, over Segment's 32 KB limit` }],
				body: truncated(big),
			},
			// Redacted as an event's properties are; a numeric messageId lists no eventId.
			{
				...at,
				eventId: null,
				place: "batch[5]",
				issues: [{ path: "batch[5].event", message: "must be a string" }],
				body: { type: "track", messageId: 42, userId: "u3", properties: { password: "[redacted]" } },
			},
			{
				...at,
				eventId: "seg-bad-qty",
				place: "batch[3]",
				issues: [{ path: "batch[3].usage.quantity", message: "must be ≥ 0" }],
				body: batch[3],
			},
			{
				...at,
				eventId: "seg-bad-type",
				place: "batch[2]",
				issues: [{ path: "batch[2].type", message: `must be one of ${SEGMENT_TYPES}` }],
				body: batch[2],
			},
			{
				...at,
				eventId: null,
				place: "batch[1]",
				issues: [{ path: "batch[1]", message: "must be an object" }],
				body: "not an object",
			},
		]);
	});

	it("answers 400 when no event is valid, and still keeps and counts every rejection", async () => {
		const tenant = await createTenant();
		const batch = [
			{ type: "track", messageId: "m-1", userId: "u" },
			["array"],
			{ type: "page", messageId: "m-3", name: "p", userId: true },
		];
		const result = await sendNow(segment(tenant, batch));
		expect({ status: result.status, body: result.body }).toEqual({
			status: 400,
			body: apiError("invalid_request", "3 invalid events; nothing was accepted", [
				{ index: 0, path: "batch[0].event", message: "must be a string" },
				{ index: 1, path: "batch[1]", message: "must be an object" },
				{ index: 2, path: "batch[2].userId", message: "must be a string" },
			]),
		});
		expect(result.events).toEqual([]);
		const at = { receivedAt: result.at, source: "segment" };
		expect(await rejectionsOf(tenant)).toEqual([
			{
				...at,
				eventId: "m-3",
				place: "batch[2]",
				issues: [{ path: "batch[2].userId", message: "must be a string" }],
				body: batch[2],
			},
			{ ...at, eventId: null, place: "batch[1]", issues: [{ path: "batch[1]", message: "must be an object" }], body: ["array"] },
			{ ...at, eventId: "m-1", place: "batch[0]", issues: [{ path: "batch[0].event", message: "must be a string" }], body: batch[0] },
		]);
		expect(await getJson("/v1/metrics", tenant.readKey)).toEqual(metricsWith(tenant, { rejected: 3 }));
	});

	it("keeps a single call's body under place $ without its write key or redacted properties", async () => {
		const tenant = await createTenant();
		const body = {
			writeKey: tenant.writeKey,
			messageId: "one",
			event: 7,
			properties: { nested: { token: "t-1", apiKey: "k-1", kept: 1 } },
		};
		const result = await sendNow(post("/v1/track", body));
		expect({ status: result.status, body: result.body }).toEqual({
			status: 400,
			body: apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "$.event", message: "must be a string" },
			]),
		});
		expect(await rejectionsOf(tenant)).toEqual([
			{
				receivedAt: result.at,
				source: "segment",
				eventId: "one",
				place: "$",
				issues: [{ path: "$.event", message: "must be a string" }],
				body: {
					writeKey: "[redacted]",
					messageId: "one",
					event: 7,
					properties: { nested: { token: "[redacted]", apiKey: "[redacted]", kept: 1 } },
				},
			},
		]);
		expect(await storedCount(tenant.id, `instr(body, '${tenant.writeKey}') > 0`)).toBe(0);
	});
});

describe("PostHog", () => {
	it("accepts a batch's valid events, counts them once end to end, and lists each invalid one with why", async () => {
		const tenant = await createTenant();
		const U = (n: number) => `0192e4a0-0000-7000-8000-00000000a00${n}`;
		const batch = [
			{ event: "signed_up", distinct_id: "u1", uuid: U(1), properties: { usage: { sku: "tokens", quantity: 1.5 } } },
			null,
			{ event: "bad_quantity", distinct_id: "u1", uuid: U(2), properties: { usage: { sku: "tokens", quantity: 0.0000001 } } },
			{ event: "$pageview", distinct_id: "u2", uuid: U(3), properties: { $current_url: "https://example.com/" } },
			{ distinct_id: { id: 1 }, uuid: U(4), properties: { token: tenant.writeKey, $lib: "posthog-js" } },
		];
		const result = await sendNow(posthog(tenant, batch));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { status: 1 } });
		expect(result.events.map((event) => event.id)).toEqual([U(1), U(3)]);

		const { counts, usage, metrics } = await settled(tenant, 2);
		expect(counts).toEqual({ signed_up: 1, $pageview: 1 });
		expect(usage).toEqual([{ sku: "tokens", unit: "unit", quantity: 1.5, events: 1 }]);
		expect(metrics).toMatchObject({ received: 2, rejected: 3, aggregated: 2, duplicatesDropped: metrics.consumed - 2 });

		const at = { receivedAt: result.at, source: "posthog" };
		expect(await rejectionsOf(tenant)).toEqual([
			{
				...at,
				eventId: U(4),
				place: "batch[4]",
				issues: [
					{ path: "batch[4].event", message: "must be a string" },
					{ path: "batch[4].userId", message: "must be a string" },
				],
				body: { distinct_id: { id: 1 }, uuid: U(4), properties: { token: "[redacted]", $lib: "posthog-js" } },
			},
			{
				...at,
				eventId: U(2),
				place: "batch[2]",
				issues: [{ path: "batch[2].usage.quantity", message: "has more than 6 fraction digits" }],
				body: batch[2],
			},
			{ ...at, eventId: null, place: "batch[1]", issues: [{ path: "batch[1]", message: "must be an object" }], body: null },
		]);
	});

	it("answers 400 for a single invalid /capture/ event, and still keeps and counts it", async () => {
		const tenant = await createTenant();
		const result = await sendNow(post("/capture/", { api_key: tenant.writeKey, event: "", distinct_id: "u", uuid: "c-1" }));
		expect({ status: result.status, body: result.body }).toEqual({
			status: 400,
			body: apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 0, path: "batch[0].event", message: "must be 1-200 characters" },
			]),
		});
		expect(await rejectionsOf(tenant)).toEqual([
			{
				receivedAt: result.at,
				source: "posthog",
				eventId: "c-1",
				place: "batch[0]",
				issues: [{ path: "batch[0].event", message: "must be 1-200 characters" }],
				body: { api_key: "[redacted]", event: "", distinct_id: "u", uuid: "c-1" },
			},
		]);
		expect(await getJson("/v1/metrics", tenant.readKey)).toEqual(metricsWith(tenant, { rejected: 1 }));
	});
});

describe("limits", () => {
	it("stores the first 100 rejections of a request and counts all of them", async () => {
		const tenant = await createTenant();
		const valid = Array.from({ length: 5 }, (_, i) => ({ event: "ok", distinct_id: "u", uuid: `ok-${i}` }));
		const result = await send(posthog(tenant, [...Array.from({ length: 120 }, (_, i) => badPostHog(i)), ...valid]));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { status: 1 } });
		expect(result.events.map((event) => event.id)).toEqual(valid.map((event) => event.uuid));
		expect(await storedCount(tenant.id)).toBe(100);

		// The default page is 50, newest (the highest index) first.
		const first = await rejectionsPage(tenant);
		expect(first.items.map((item) => item.place)).toEqual(Array.from({ length: 50 }, (_, i) => `batch[${99 - i}]`));
		expect(first.items[0]).toMatchObject({
			eventId: "bad-99",
			issues: [{ path: "batch[99].event", message: "must be a string" }],
			body: badPostHog(99),
		});
		const second = await rejectionsPage(tenant, `cursor=${first.nextCursor}`);
		expect(second.items.map((item) => item.place)).toEqual(Array.from({ length: 50 }, (_, i) => `batch[${49 - i}]`));
		expect(second.nextCursor).toBeNull();
		expect(await getJson("/v1/metrics", tenant.readKey)).toMatchObject({ received: 5, rejected: 120 });
	});

	it("keeps each stored issue path to 200 characters, while the 400 names it whole", async () => {
		const tenant = await createTenant();
		const key = "k".repeat(300);
		const result = await send(segment(tenant, [{ type: "track", event: "a", properties: { [key]: { constructor: 1 } } }]));
		const path = `batch[0].properties.${key}.constructor`;
		expect(result.body).toEqual(
			apiError("invalid_request", "1 invalid event; nothing was accepted", [{ index: 0, path, message: "forbidden key" }]),
		);
		expect((await rejectionsOf(tenant)).map((item) => item.issues)).toEqual([
			[{ path: `${path.slice(0, 200)}…`, message: "forbidden key" }],
		]);
	});

	it("cuts a stored body at 8 KB on a character boundary, marker included", async () => {
		const tenant = await createTenant();
		// 4-byte characters: the cut must not split one.
		const message = { type: "track", messageId: "wide", properties: { pad: "😀".repeat(3000) } };
		expect((await send(segment(tenant, [message]))).status).toBe(400);
		const [item] = await rejectionsOf(tenant);
		const body = item!.body as string;
		const marker = `…[truncated from ${jsonBytes(message)} bytes]`;
		expect(body.endsWith(marker)).toBe(true);
		const kept = body.slice(0, -marker.length);
		expect(JSON.stringify(message).startsWith(kept)).toBe(true);
		expect(kept.endsWith("😀")).toBe(true);
		const bytes = new TextEncoder().encode(body).byteLength;
		expect(bytes).toBeLessThanOrEqual(REJECTION_LIMITS.bodyBytes);
		expect(bytes).toBeGreaterThan(REJECTION_LIMITS.bodyBytes - 4);
	});
});

describe("GET /v1/rejections", () => {
	it("pages newest first; a cursor is stable while new rejections arrive, and null after the last page", async () => {
		const tenant = await createTenant();
		expect(
			(
				await send(
					posthog(
						tenant,
						Array.from({ length: 7 }, (_, i) => badPostHog(i)),
					),
				)
			).status,
		).toBe(400);
		const places = (page: { items: { place: string }[] }) => page.items.map((item) => item.place);

		const first = await rejectionsPage(tenant, "limit=3");
		expect(places(first)).toEqual(["batch[6]", "batch[5]", "batch[4]"]);
		expect(first.nextCursor).toBe(first.items[2]!.id);
		expect((await send(posthog(tenant, [badPostHog(100)]))).status).toBe(400);

		const second = await rejectionsPage(tenant, `limit=3&cursor=${first.nextCursor}`);
		expect(places(second)).toEqual(["batch[3]", "batch[2]", "batch[1]"]);
		const last = await rejectionsPage(tenant, `cursor=${second.nextCursor}&limit=3`);
		expect({ places: places(last), nextCursor: last.nextCursor }).toEqual({ places: ["batch[0]"], nextCursor: null });

		const fresh = await rejectionsPage(tenant, "limit=1");
		expect(fresh.items.map((item) => item.eventId)).toEqual(["bad-100"]);
		expect(Number(fresh.items[0]!.id)).toBeGreaterThan(Number(first.items[0]!.id));
	});

	it("answers nextCursor null when a page ends exactly at the last rejection, and an empty list for none", async () => {
		const tenant = await createTenant();
		expect(await rejectionsPage(tenant)).toEqual({ items: [], nextCursor: null });
		expect((await send(posthog(tenant, [badPostHog(0), badPostHog(1), badPostHog(2)]))).status).toBe(400);
		const page = await rejectionsPage(tenant, "limit=3");
		expect({ count: page.items.length, nextCursor: page.nextCursor }).toEqual({ count: 3, nextCursor: null });
		expect((await rejectionsPage(tenant, "limit=100")).items).toHaveLength(3);
	});

	it("shows a tenant only its own rejections", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		expect((await send(posthog(a, [badPostHog(0)]))).status).toBe(400);
		const own = await rejectionsPage(a);
		expect(own.items.map((item) => item.eventId)).toEqual(["bad-0"]);
		expect(await rejectionsPage(b)).toEqual({ items: [], nextCursor: null });
		// A cursor names a position, not a tenant: b's page after a's row is still b's, and empty.
		expect(await rejectionsPage(b, `cursor=${Number(own.items[0]!.id) + 1}`)).toEqual({ items: [], nextCursor: null });
	});

	it("answers a read key 200, a write key 403, no key 401 and the admin token 401", async () => {
		const tenant = await createTenant();
		expect((await call("/v1/rejections", { key: tenant.readKey })).status).toBe(200);
		await expectError(await call("/v1/rejections", { key: tenant.writeKey }), 403, "forbidden");
		await expectError(await call("/v1/rejections"), 401, "unauthorized");
		await expectError(await call("/v1/rejections", { key: ADMIN_TOKEN }), 401, "unauthorized");
		await expectError(await call("/v1/rejections", { headers: { authorization: basicAuth(tenant.readKey) } }), 401, "unauthorized");
	});

	it.each<[string, string, string]>([
		["an unknown parameter", "since=2026-01-01", "since"],
		["a tenant", "tenant=acme", "tenant"],
	])("answers 400 for %s in the query", async (_, query, path) => {
		const tenant = await createTenant();
		await expectError(await call(`/v1/rejections?${query}`, { key: tenant.readKey }), 400, "invalid_request", [
			{ path, message: "unknown query parameter" },
		]);
	});

	it.each<[string, string]>([
		["limit=0", "limit"],
		["limit=101", "limit"],
		["limit=abc", "limit"],
		["limit=1e2", "limit"],
		["limit=", "limit"],
		["limit=-1", "limit"],
		["cursor=abc", "cursor"],
		["cursor=0", "cursor"],
		["cursor=-5", "cursor"],
		["cursor=9999999999999999", "cursor"],
	])("answers 400 for %s", async (query, path) => {
		const tenant = await createTenant();
		const message = path === "limit" ? "must be an integer 1-100" : "must be a cursor from a previous page";
		await expectError(await call(`/v1/rejections?${query}`, { key: tenant.readKey }), 400, "invalid_request", [{ path, message }]);
	});

	it.each(["limit=1&limit=2", "cursor=5&cursor=5"])("answers 400 for the repeated parameter in %s", async (query) => {
		const tenant = await createTenant();
		const path = query.split("=")[0]!;
		await expectError(await call(`/v1/rejections?${query}`, { key: tenant.readKey }), 400, "invalid_request", [
			{ path, message: "given more than once" },
		]);
	});
});

describe("retention", () => {
	/** Inserts `count` rejections for a tenant straight into D1, with event ids `<label>-1…`. */
	async function seed(tenant: string, receivedAt: number, label: string, count = 1): Promise<void> {
		await env.DB.prepare(
			`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?4)
			 INSERT INTO rejections (tenant, received_at, source, event_id, place, issues, body)
			 SELECT ?1, ?2, 'posthog', ?3 || '-' || i, 'batch[0]', '[]', '{}' FROM n`,
		)
			.bind(tenant, new Date(receivedAt).toISOString(), label, count)
			.run();
	}

	it("lists no rejection older than 30 days, and deletes them with the tenant's next rejection", async () => {
		const [tenant, other] = [await createTenant(), await createTenant()];
		const now = Date.now();
		await seed(tenant.id, now - 30 * DAY - 60_000, "old");
		await seed(tenant.id, now - 29 * DAY, "recent");
		await seed(other.id, now - 31 * DAY, "other-old");
		expect((await rejectionsOf(tenant)).map((item) => item.eventId)).toEqual(["recent-1"]);
		expect(await storedCount(tenant.id)).toBe(2);

		expect((await send(posthog(tenant, [badPostHog(0)]))).status).toBe(400);
		expect((await rejectionsOf(tenant)).map((item) => item.eventId)).toEqual(["bad-0", "recent-1"]);
		expect(await storedCount(tenant.id)).toBe(2);
		expect(await storedCount(tenant.id, "event_id = 'old-1'")).toBe(0);
		// Pruning is per tenant: another tenant's old row waits for that tenant's own next write.
		expect(await storedCount(other.id)).toBe(1);
	});

	it("keeps at most the newest 10,000 rejections per tenant", async () => {
		const tenant = await createTenant();
		await seed(tenant.id, Date.now() - DAY, "seed", REJECTION_LIMITS.perTenant);
		expect(await storedCount(tenant.id)).toBe(10_000);
		expect((await send(posthog(tenant, [badPostHog(0), badPostHog(1)]))).status).toBe(400);
		expect(await storedCount(tenant.id)).toBe(10_000);
		expect(await storedCount(tenant.id, "event_id IN ('seed-1', 'seed-2')")).toBe(0);
		expect(await storedCount(tenant.id, "event_id IN ('seed-3', 'bad-0', 'bad-1')")).toBe(3);
	});
});

describe("storing never holds up or fails the answer", () => {
	/** env.DB with its batch() replaced: the rejections' write is one D1 batch. */
	function withBatch(batch: (statements: D1PreparedStatement[]) => Promise<D1Result[]>): D1Database {
		return new Proxy(env.DB, {
			get(target, prop) {
				if (prop === "batch") return batch;
				const value = Reflect.get(target, prop, target) as unknown;
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
	}

	it("answers 200 and accepts the valid events while D1 refuses the rejections, and logs it", async () => {
		const tenant = await createTenant();
		const errors = vi.spyOn(console, "error").mockImplementation(() => {});
		const ctx = createExecutionContext();
		const queue = new RecordingQueue();
		const db = withBatch(() => Promise.reject(new Error("D1 is down")));
		const response = await fetchWith(posthog(tenant, [{ event: "ok", distinct_id: "u", uuid: "ok-1" }, badPostHog(1)]), queue, ctx, {
			DB: db,
		});
		await waitOnExecutionContext(ctx);
		expect({ status: response.status, body: await response.json() }).toEqual({ status: 200, body: { status: 1 } });
		expect(queue.messages.flatMap((message) => message.events).map((event) => event.id)).toEqual(["ok-1"]);
		expect(errors).toHaveBeenCalledWith(
			"rejections not stored",
			{ tenant: tenant.id, source: "posthog", rejected: 1 },
			expect.objectContaining({ message: "D1 is down" }),
		);
		expect(await storedCount(tenant.id)).toBe(0);
	});

	it("answers before the rejections are written", async () => {
		const tenant = await createTenant();
		const gate = deferred();
		const ctx = createExecutionContext();
		const db = withBatch(async (statements) => {
			await gate.promise;
			return env.DB.batch(statements);
		});
		const response = await fetchWith(segment(tenant, [{ type: "track", messageId: "held", userId: "u" }]), new RecordingQueue(), ctx, {
			DB: db,
		});
		expect(response.status).toBe(400);
		expect(await storedCount(tenant.id)).toBe(0);
		gate.resolve();
		await waitOnExecutionContext(ctx);
		expect((await rejectionsOf(tenant)).map((item) => item.eventId)).toEqual(["held"]);
	});
});

describe("POST /v1/events", () => {
	it("stays all-or-nothing: one invalid event refuses the batch, and nothing is kept as a rejection", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(
			eventsRequest(JSON.stringify({ events: [{ event: "ok" }, { event: 7 }] }), tenant.writeKey),
		);
		expect({ status: response.status, body: await response.json() }).toEqual({
			status: 400,
			body: apiError("invalid_request", "1 invalid event; nothing was accepted", [
				{ index: 1, path: "event", message: "must be a string" },
			]),
		});
		expect(queue.calls).toEqual([]);
		expect(await rejectionsPage(tenant)).toEqual({ items: [], nextCursor: null });
		expect(await getJson("/v1/metrics", tenant.readKey)).toEqual(metricsWith(tenant));
	});
});
