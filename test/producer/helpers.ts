// Producer test plumbing: call the Worker with a queue that records (and can hold back or fail) its sends.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import worker from "../../src/index";
import { RecordingQueue } from "../helpers/queues";

export const EVENTS_URL = "https://meterline.test/v1/events";

/** A request to POST /v1/events. A string body is sent as application/json unless told otherwise. */
export function eventsRequest(body: BodyInit, key?: string, contentType: string | null = "application/json"): Request {
	const headers = new Headers();
	if (key !== undefined) headers.set("authorization", `Bearer ${key}`);
	if (contentType !== null) headers.set("content-type", contentType);
	return new Request(EVENTS_URL, { method: "POST", body, headers });
}

/** Calls the Worker's own fetch handler with EVENTS replaced by `queue`; does not wait for waitUntil. */
export function fetchWith(request: Request, queue: RecordingQueue, ctx: ExecutionContext, overrides: Partial<Env> = {}): Promise<Response> {
	return worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, { ...env, ...overrides, EVENTS: queue }, ctx);
}

/** Calls the Worker with a recording queue and waits for everything it scheduled with waitUntil. */
export async function ingest(request: Request, queue = new RecordingQueue()): Promise<{ response: Response; queue: RecordingQueue }> {
	const ctx = createExecutionContext();
	const response = await fetchWith(request, queue, ctx);
	await waitOnExecutionContext(ctx);
	return { response, queue };
}

export interface ErrorBody {
	error: { code: string; message: string; details?: { index?: number; path: string; message: string }[] };
}

/** Reads an error answer, checking it has the one error shape. */
export async function errorOf(response: Response): Promise<ErrorBody["error"]> {
	const body = await response.json<ErrorBody>();
	expect(Object.keys(body)).toEqual(["error"]);
	expect(body.error).toEqual({
		code: expect.any(String),
		message: expect.any(String),
		...(body.error.details && { details: expect.any(Array) }),
	});
	return body.error;
}

/** The UTF-8 byte length of a value's JSON. */
export function jsonBytes(value: unknown): number {
	return new TextEncoder().encode(JSON.stringify(value)).byteLength;
}

export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
