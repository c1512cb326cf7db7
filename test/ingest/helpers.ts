// Compat test plumbing: Segment and PostHog requests, gzip, a client clock that runs behind, what
// reached the recording queue, the refusals both APIs answer alike, the rejections they keep, and
// the counts once the real queue and aggregator have settled.
import { expect, vi } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { call, getJson, type TestTenant } from "../helpers/api";
import { freezeClockAt, useFrozenClock } from "../helpers/clock";
import { RecordingQueue } from "../helpers/queues";
import { ingest, type ErrorBody } from "../producer/helpers";

export const BASE = "https://meterline.test";

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

/** A POST with a JSON (or raw) body and any extra headers; no Content-Type unless given. */
export function post(path: string, body: BodyInit | object | null, headers: Record<string, string> = {}): Request {
	const raw = body === null || typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
	return new Request(BASE + path, { method: "POST", body: raw, headers: { "content-type": "application/json", ...headers } });
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
