// Compat test plumbing: Segment and PostHog requests, gzip, and what reached the recording queue.
import { expect } from "vitest";
import type { QueuedEvent } from "../../src/events/schema";
import { ingest, RecordingQueue, type ErrorBody } from "../producer/helpers";

export const BASE = "https://meterline.test";

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

/** Sends through the Worker with a recording queue; returns status, body and every enqueued event. */
export async function send(request: Request): Promise<{ status: number; headers: Headers; body: unknown; tenants: string[]; events: QueuedEvent[] }> {
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
