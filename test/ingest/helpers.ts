// Ingest test plumbing: Segment and PostHog requests, gzip, a client clock that runs behind, what
// reached the recording queue, the refusals both APIs answer alike, the rejections they keep, the
// counts once the real queue and aggregator have settled, and the tenant caps.
import { env } from "cloudflare:workers";
import { expect, vi } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import {
	BASE,
	call,
	createTenant,
	eventsRequest,
	freezeClockAt,
	getJson,
	ingest,
	RecordingQueue,
	useFrozenClock,
	type ErrorBody,
	type TestTenant,
} from "../helpers";
import { metricsOf } from "../read/helpers";

/** The frozen receive time; the client's clock runs 5 s behind it... */
export const RECEIVED = Date.parse("2026-11-20T10:00:07.250Z");
/** ...so an event it stamped 10:00:00 and sent at 10:00:05 happened at 10:00:02.250 server time. */
export const TIMESTAMP = "2026-11-20T10:00:00.000Z";
export const SENT_AT = "2026-11-20T10:00:05.000Z";
export const CORRECTED = Date.parse("2026-11-20T10:00:02.250Z");

/** Freezes Date at RECEIVED for each test of the calling describe block. */
export function receiveAtFrozenTime(): void {
	useFrozenClock(() => freezeClockAt(RECEIVED));
}

/** Segment's HTTP Basic credentials: base64("<writeKey>:"). */
export function basicAuth(writeKey: string): string {
	return `Basic ${btoa(`${writeKey}:`)}`;
}

/** The tenant's write key as Segment's HTTP Basic Authorization header. */
export const segmentAuth = (tenant: TestTenant) => ({ authorization: basicAuth(tenant.writeKey) });

/** Segment's call types, as an unknown type's issue lists them. */
export const SEGMENT_TYPES = "track, identify, page, screen, group, alias";

/** PostHog event uuids. */
export const UUID_1 = "0192e4a0-0000-7000-8000-000000000001";
export const UUID_2 = "0192e4a0-0000-7000-8000-000000000002";

/** What PostHog's capture API answers an accepted request. */
export const POSTHOG_OK = { status: 200, body: { status: 1 } };

/** One posthog-node batch entry, as its queue sends it. */
export function nodeEvent(overrides: Record<string, unknown> = {}) {
	return {
		event: "signed_up",
		distinct_id: "user-1",
		properties: { $lib: "posthog-node", $lib_version: "5.0.0", $geoip_disable: true },
		timestamp: TIMESTAMP,
		uuid: UUID_1,
		type: "capture",
		library: "posthog-node",
		library_version: "5.0.0",
		...overrides,
	};
}

/** A Segment /v1/batch of `batch` with the tenant's write key over HTTP Basic. */
export const segmentBatch = (tenant: TestTenant, batch: unknown[]) =>
	post("/v1/batch", { batch }, { authorization: basicAuth(tenant.writeKey) });
/** A PostHog /batch/ of `batch` with the tenant's write key as api_key. */
export const posthogBatch = (tenant: TestTenant, batch: unknown[]) => post("/batch/", { api_key: tenant.writeKey, batch });
/** A PostHog event the validator refuses: its name is a number. */
export const badPostHog = (i: number) => ({ event: 7, distinct_id: "u", uuid: `bad-${i}` });

/** A POST with a JSON (or raw) body and any extra headers; no Content-Type unless given. */
export function post(path: string, body: BodyInit | object | null, headers: Record<string, string> = {}): Request {
	const raw = body === null || typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
	return new Request(BASE + path, { method: "POST", body: raw, headers: { "content-type": "application/json", ...headers } });
}

/** PUT /v1/settings/cors with `body`, by default with the tenant's read key. */
export function putOrigins(tenant: TestTenant, body: unknown, key = tenant.readKey): Promise<Response> {
	return call("/v1/settings/cors", { method: "PUT", key, body: JSON.stringify(body) });
}

/** gzip of a string (or of a value's JSON), as posthog-node and posthog-js compress. */
export async function gzip(data: string | object): Promise<Uint8Array> {
	const text = typeof data === "string" ? data : JSON.stringify(data);
	const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
	return new Uint8Array(await new Response(stream).arrayBuffer());
}

export interface SendResult {
	status: number;
	headers: Headers;
	body: unknown;
	tenants: string[];
	events: QueuedEvent[];
}

/** Sends through the Worker with a recording queue; returns status, body and every enqueued event. */
export async function send(request: Request): Promise<SendResult> {
	const { response, queue } = await ingest(request, new RecordingQueue());
	expect(queue.failed).toBe(0);
	return {
		status: response.status,
		headers: response.headers,
		body: await response.json(),
		tenants: [...new Set(queue.messages.map((message) => message.tenant))],
		events: queue.messages.flatMap((message) => message.events),
	};
}

/** The one error shape, built for exact comparison. */
export function apiError(code: string, message: string, details?: NonNullable<ErrorBody["error"]["details"]>): ErrorBody {
	return { error: details ? { code, message, details } : { code, message } };
}

/** Expects exactly this status and body, and nothing enqueued. */
export async function expectRefused(request: Request, status: number, body: unknown): Promise<void> {
	const result = await send(request);
	expect({ status: result.status, body: result.body }).toEqual({ status, body });
	expect(result.events).toEqual([]);
}

/** Expects a GET of `path` to be answered 405 with Allow: POST. */
export async function expectPostOnly(path: string): Promise<void> {
	const result = await send(new Request(BASE + path));
	expect({ status: result.status, allow: result.headers.get("allow"), body: result.body }).toEqual({
		status: 405,
		allow: "POST",
		body: apiError("method_not_allowed", "Method not allowed"),
	});
}

/**
 * Repeats `request` until the tenant is rate limited: at least 1000 answers of 400 that enqueue
 * nothing, then 429 with Retry-After: 60.
 */
export async function expectRateLimited(request: () => Promise<SendResult>): Promise<void> {
	let allowed = 0;
	let limited: SendResult | undefined;
	// The local limiter's window is aligned to the minute, so one rollover may grant a second 1000.
	while (!limited && allowed <= 2000) {
		const result = await request();
		expect(result.events).toEqual([]);
		if (result.status === 429) limited = result;
		else {
			expect(result.status).toBe(400);
			allowed++;
		}
	}
	expect(allowed).toBeGreaterThanOrEqual(1000);
	expect(limited).toBeDefined();
	expect({ status: limited!.status, retryAfter: limited!.headers.get("retry-after"), body: limited!.body }).toEqual({
		status: 429,
		retryAfter: "60",
		body: apiError("rate_limited", "Rate limit exceeded; retry later"),
	});
}

/** One item of GET /v1/rejections. */
export interface RejectionItem {
	id: string;
	receivedAt: string;
	source: "segment" | "posthog";
	eventId: string | null;
	place: string;
	issues: { path: string; message: string }[];
	body: unknown;
}

/** One page of GET /v1/rejections (`query` without the "?"). */
export function rejectionsPage(tenant: TestTenant, query = ""): Promise<{ items: RejectionItem[]; nextCursor: string | null }> {
	return getJson(`/v1/rejections${query ? `?${query}` : ""}`, tenant.readKey);
}

/** The tenant's rejections as listed (newest first), ids checked to be decreasing digit strings and then left out. */
export async function rejectionsOf(tenant: TestTenant, query = "limit=100"): Promise<Omit<RejectionItem, "id">[]> {
	const { items } = await rejectionsPage(tenant, query);
	const seqs = items.map((item) => Number(item.id));
	expect(items.map((item) => item.id)).toEqual(seqs.map(String));
	expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
	return items.map(({ id: _id, ...rest }) => rest);
}

/** How many of the tenant's rejections D1 holds (those matching `where`, an SQL condition). */
export async function storedRejections(tenant: string, where = "1"): Promise<number> {
	const row = await env.DB.prepare(`SELECT count(*) AS n FROM rejections WHERE tenant = ?1 AND ${where}`)
		.bind(tenant)
		.first<{ n: number }>();
	return row!.n;
}

export interface SettledMetrics {
	received: number;
	rejected: number;
	consumed: number;
	aggregated: number;
	duplicatesDropped: number;
}

/**
 * Once the aggregator has consumed every event sent (duplicates included), flushes and returns the
 * counts per event name and the month's usage, as the reports show them.
 */
export async function settled(tenant: TestTenant, sent: number) {
	const range = `from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date(Date.now() + 3_600_000).toISOString()}`;
	let result: { counts: Record<string, number>; usage: unknown[]; metrics: SettledMetrics } | undefined;
	await vi.waitFor(
		async () => {
			const metrics = await getJson<SettledMetrics>("/v1/metrics", tenant.readKey);
			expect(metrics.consumed).toBeGreaterThanOrEqual(sent);
			expect((await call("/v1/flush", { method: "POST", key: tenant.writeKey })).status).toBe(200);
			const stats = await getJson<{ items: { event: string; count: number }[] }>(
				`/v1/stats?granularity=hour&${range}`,
				tenant.readKey,
			);
			const usage = await getJson<{ items: { sku: string; unit: string; quantity: number; events: number }[] }>(
				`/v1/usage?granularity=month`,
				tenant.readKey,
			);
			const counts: Record<string, number> = {};
			for (const item of stats.items) counts[item.event] = (counts[item.event] ?? 0) + item.count;
			result = { counts, usage: usage.items.map(({ sku, unit, quantity, events }) => ({ sku, unit, quantity, events })), metrics };
		},
		{ timeout: 30_000, interval: 100 },
	);
	return result!;
}

// ---- The tenant caps on event names and (sku, unit) pairs ----

/** The cap on a tenant's distinct event names, and on its (sku, unit) pairs. */
export const CAP = 1000;
export const NEW_NAME = `is a new event name, and the tenant already has ${CAP} (the cap)`;
export const NEW_PAIR = `is a new (sku, unit) pair, and the tenant already has ${CAP} (the cap)`;

export const namedEvents = (count: number) => Array.from({ length: count }, (_, i) => ({ event: `name-${i}` }));

/** POST /v1/events through the Worker with a recording queue in front of the real one. */
export async function postEvents(tenant: TestTenant, events: unknown[]): Promise<{ status: number; body: unknown; sent: QueuedEvent[] }> {
	const { response, queue } = await ingest(eventsRequest(JSON.stringify({ events }), tenant.writeKey));
	expect(queue.failed).toBe(0);
	return { status: response.status, body: await response.json(), sent: queue.messages.flatMap((message) => message.events) };
}

/** Waits until the tenant's aggregator has consumed `count` events in all. */
export async function untilConsumed(tenant: TestTenant, count: number): Promise<void> {
	await vi.waitFor(async () => expect((await metricsOf(tenant)).consumed).toBe(count), { timeout: 20_000, interval: 50 });
}

/** A tenant that has used `events` (every name or pair in them registered), all consumed. */
export async function tenantThatUsed(events: unknown[]): Promise<TestTenant> {
	const tenant = await createTenant();
	const result = await postEvents(tenant, events);
	expect({ status: result.status, sent: result.sent.length }).toEqual({ status: 202, sent: events.length });
	await untilConsumed(tenant, events.length);
	return tenant;
}

export function capError(details: { index: number; path: string; message: string }[]) {
	const bad = new Set(details.map((detail) => detail.index)).size;
	return { error: { code: "invalid_request", message: `${bad} invalid event${bad === 1 ? "" : "s"}; nothing was accepted`, details } };
}
