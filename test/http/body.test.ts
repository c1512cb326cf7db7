// POST /v1/events body rules: media type, size, encoding, JSON, and the all-or-nothing batch.
import { describe, expect, it } from "vitest";
import { createTenant, errorOf, eventsRequest, ingest } from "../helpers";

const MAX_BODY = 1_048_576;

/** A single-event body padded with JSON whitespace to exactly `bytes` bytes. */
function paddedBody(bytes: number): string {
	const text = '{"event":"padded"}';
	return text + " ".repeat(bytes - text.length);
}

/** A stream that yields `bytes` bytes of JSON in 64 KB chunks, with no Content-Length. */
function streamedBody(bytes: number): ReadableStream<Uint8Array> {
	const all = new TextEncoder().encode(paddedBody(bytes));
	let offset = 0;
	return new ReadableStream({
		pull(controller) {
			if (offset >= all.byteLength) return controller.close();
			controller.enqueue(all.slice(offset, offset + 65_536));
			offset += 65_536;
		},
	});
}

const batch = (n: number, fields: Record<string, unknown> = {}) => ({
	events: Array.from({ length: n }, (_, i) => ({ event: `e${i}`, ...fields })),
});

describe("request body", () => {
	it.each([
		["a text/plain body", "text/plain"],
		["a form body", "application/x-www-form-urlencoded"],
		["a body without Content-Type", null],
	])("answers 415 for %s", async (_, contentType) => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(new TextEncoder().encode('{"event":"a"}'), tenant.writeKey, contentType));
		expect(response.status).toBe(415);
		expect((await errorOf(response)).code).toBe("unsupported_media_type");
		expect(queue.calls).toEqual([]);
	});

	it("accepts application/json with a charset", async () => {
		const tenant = await createTenant();
		const { response } = await ingest(eventsRequest('{"event":"a"}', tenant.writeKey, "application/json; charset=utf-8"));
		expect(response.status).toBe(202);
	});

	it.each([
		["an empty body", ""],
		["invalid JSON", '{"event":'],
		["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0x7d])],
		["a lone continuation byte inside a string", new Uint8Array([...new TextEncoder().encode('{"event":"'), 0x80, 0x22, 0x7d])],
	])("answers 400 with path body for %s", async (_, body) => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(body, tenant.writeKey));
		expect(response.status).toBe(400);
		const error = await errorOf(response);
		expect(error.code).toBe("invalid_request");
		expect(error.details?.map((detail) => detail.path)).toEqual(["body"]);
		expect(queue.calls).toEqual([]);
	});

	it.each([
		["null", "null"],
		["a number", "42"],
		["a string", '"api_call"'],
		["a bare array of events", '[{"event":"a"}]'],
	])("answers 400 with path $ for a body that is %s", async (_, text) => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(text, tenant.writeKey));
		expect(response.status).toBe(400);
		expect((await errorOf(response)).details).toEqual([{ index: 0, path: "$", message: expect.any(String) }]);
		expect(queue.calls).toEqual([]);
	});

	it("accepts a body of exactly 1 MB", async () => {
		const tenant = await createTenant();
		const { response } = await ingest(eventsRequest(paddedBody(MAX_BODY), tenant.writeKey));
		expect(response.status).toBe(202);
	});

	it("answers 413 for a body one byte over 1 MB", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(paddedBody(MAX_BODY + 1), tenant.writeKey));
		expect(response.status).toBe(413);
		const error = await errorOf(response);
		expect(error.code).toBe("payload_too_large");
		expect(error.details?.map((detail) => detail.path)).toEqual(["body"]);
		expect(queue.calls).toEqual([]);
	});

	it("answers 413 for a streamed body over 1 MB without Content-Length", async () => {
		const tenant = await createTenant();
		const request = eventsRequest(streamedBody(MAX_BODY + 1), tenant.writeKey);
		expect(request.headers.get("content-length")).toBeNull();
		const { response, queue } = await ingest(request);
		expect(response.status).toBe(413);
		expect((await errorOf(response)).code).toBe("payload_too_large");
		expect(queue.calls).toEqual([]);
	});

	it("accepts a streamed body of exactly 1 MB", async () => {
		const tenant = await createTenant();
		const { response } = await ingest(eventsRequest(streamedBody(MAX_BODY), tenant.writeKey));
		expect(response.status).toBe(202);
	});
});

describe("batches", () => {
	it.each([
		["an empty events array", { events: [] }],
		["1001 events", batch(1001)],
		["events that is a string", { events: "x" }],
		["events that is an object", { events: { event: "a" } }],
	])("answers 400 with path events for %s", async (_, body) => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(JSON.stringify(body), tenant.writeKey));
		expect(response.status).toBe(400);
		const error = await errorOf(response);
		expect(error.code).toBe("invalid_request");
		expect(error.details?.map((detail) => detail.path)).toEqual(["events"]);
		expect(queue.calls).toEqual([]);
	});

	it("accepts 1000 events", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(JSON.stringify(batch(1000)), tenant.writeKey));
		expect(response.status).toBe(202);
		expect((await response.json<{ accepted: number }>()).accepted).toBe(1000);
		expect(queue.messages.flatMap((message) => message.events.map((event) => event.event))).toEqual(
			batch(1000).events.map((e) => e.event),
		);
	});

	it("rejects an unknown field beside events", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(JSON.stringify({ ...batch(2), source: "web" }), tenant.writeKey));
		expect(response.status).toBe(400);
		expect((await errorOf(response)).details?.map(({ path, message }) => ({ path, message }))).toEqual([
			{ path: "source", message: "unknown field" },
		]);
		expect(queue.calls).toEqual([]);
	});

	it("rejects the whole batch when events 1 and 3 are invalid", async () => {
		const tenant = await createTenant();
		const events = [
			{ event: "ok0" },
			{ event: "bad1", usage: { sku: "tokens", quantity: -5 } },
			{ event: "ok2" },
			{ event: "", id: "bad3" },
			{ event: "ok4" },
		];
		const { response, queue } = await ingest(eventsRequest(JSON.stringify({ events }), tenant.writeKey));
		expect(response.status).toBe(400);
		const error = await errorOf(response);
		expect(error.code).toBe("invalid_request");
		expect(error.details?.map(({ index, path }) => ({ index, path }))).toEqual([
			{ index: 1, path: "usage.quantity" },
			{ index: 3, path: "event" },
		]);
		expect(queue.calls).toEqual([]);
	});

	it("names the index of a batch entry that is not an object", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(JSON.stringify({ events: [{ event: "a" }, "b", null] }), tenant.writeKey));
		expect(response.status).toBe(400);
		expect((await errorOf(response)).details?.map(({ index, path }) => ({ index, path }))).toEqual([
			{ index: 1, path: "$" },
			{ index: 2, path: "$" },
		]);
		expect(queue.calls).toEqual([]);
	});

	// Problems with the body or the batch itself concern no single event, so they carry no index.
	it.each([
		["an empty body", "", [{ path: "body", message: "empty" }]],
		["an empty events array", '{"events":[]}', [{ path: "events", message: "must hold 1 to 1000 events, got 0" }]],
		["events that is not an array", '{"events":"x"}', [{ path: "events", message: "must be an array" }]],
		["an unknown field beside events", '{"events":[{"event":"a"}],"source":"web"}', [{ path: "source", message: "unknown field" }]],
	])("names the field without an index for %s", async (_, text, expected) => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(text, tenant.writeKey));
		expect(response.status).toBe(400);
		expect((await errorOf(response)).details).toEqual(expected);
		expect(queue.calls).toEqual([]);
	});
});
