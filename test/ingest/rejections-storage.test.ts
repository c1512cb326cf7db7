// How the Segment and PostHog rejections are stored: the first 100 of a request, issue paths and
// bodies cut to their limits, 30-day and 10,000-row retention, and a write that never holds up or
// fails the answer.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { REJECTION_LIMITS } from "../../src/sinks/d1/rejections";
import { createTenant, deferred, fetchWith, getJson, jsonBytes, RecordingQueue } from "../helpers";
import { apiError, badPostHog, posthogBatch, rejectionsOf, rejectionsPage, segmentBatch, send, storedRejections } from "./helpers";

const DAY = 86_400_000;

afterEach(() => {
	vi.useRealTimers();
	vi.restoreAllMocks();
});

describe("limits", () => {
	it("stores the first 100 rejections of a request and counts all of them", async () => {
		const tenant = await createTenant();
		const valid = Array.from({ length: 5 }, (_, i) => ({ event: "ok", distinct_id: "u", uuid: `ok-${i}` }));
		const result = await send(posthogBatch(tenant, [...Array.from({ length: 120 }, (_, i) => badPostHog(i)), ...valid]));
		expect({ status: result.status, body: result.body }).toEqual({ status: 200, body: { status: 1 } });
		expect(result.events.map((event) => event.id)).toEqual(valid.map((event) => event.uuid));
		expect(await storedRejections(tenant.id)).toBe(100);

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
		const result = await send(segmentBatch(tenant, [{ type: "track", event: "a", properties: { [key]: { constructor: 1 } } }]));
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
		expect((await send(segmentBatch(tenant, [message]))).status).toBe(400);
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
		expect(await storedRejections(tenant.id)).toBe(2);

		expect((await send(posthogBatch(tenant, [badPostHog(0)]))).status).toBe(400);
		expect((await rejectionsOf(tenant)).map((item) => item.eventId)).toEqual(["bad-0", "recent-1"]);
		expect(await storedRejections(tenant.id)).toBe(2);
		expect(await storedRejections(tenant.id, "event_id = 'old-1'")).toBe(0);
		// Pruning is per tenant: another tenant's old row waits for that tenant's own next write.
		expect(await storedRejections(other.id)).toBe(1);
	});

	it("keeps at most the newest 10,000 rejections per tenant", async () => {
		const tenant = await createTenant();
		await seed(tenant.id, Date.now() - DAY, "seed", REJECTION_LIMITS.perTenant);
		expect(await storedRejections(tenant.id)).toBe(10_000);
		expect((await send(posthogBatch(tenant, [badPostHog(0), badPostHog(1)]))).status).toBe(400);
		expect(await storedRejections(tenant.id)).toBe(10_000);
		expect(await storedRejections(tenant.id, "event_id IN ('seed-1', 'seed-2')")).toBe(0);
		expect(await storedRejections(tenant.id, "event_id IN ('seed-3', 'bad-0', 'bad-1')")).toBe(3);
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
		const response = await fetchWith(
			posthogBatch(tenant, [{ event: "ok", distinct_id: "u", uuid: "ok-1" }, badPostHog(1)]),
			queue,
			ctx,
			{
				DB: db,
			},
		);
		await waitOnExecutionContext(ctx);
		expect({ status: response.status, body: await response.json() }).toEqual({ status: 200, body: { status: 1 } });
		expect(queue.messages.flatMap((message) => message.events).map((event) => event.id)).toEqual(["ok-1"]);
		expect(errors).toHaveBeenCalledWith(
			"rejections not stored",
			{ tenant: tenant.id, source: "posthog", rejected: 1 },
			expect.objectContaining({ message: "D1 is down" }),
		);
		expect(await storedRejections(tenant.id)).toBe(0);
	});

	it("answers before the rejections are written", async () => {
		const tenant = await createTenant();
		const gate = deferred();
		const ctx = createExecutionContext();
		const db = withBatch(async (statements) => {
			await gate.promise;
			return env.DB.batch(statements);
		});
		const response = await fetchWith(
			segmentBatch(tenant, [{ type: "track", messageId: "held", userId: "u" }]),
			new RecordingQueue(),
			ctx,
			{
				DB: db,
			},
		);
		expect(response.status).toBe(400);
		expect(await storedRejections(tenant.id)).toBe(0);
		gate.resolve();
		await waitOnExecutionContext(ctx);
		expect((await rejectionsOf(tenant)).map((item) => item.eventId)).toEqual(["held"]);
	});
});
