// Hostile bodies at POST /v1/events, each refused with the exact status and field and nothing
// enqueued: broken syntax and encodings, wrong media types, sizes past the limits, deep nesting and
// prototype keys; at most 100 details for 1000 bad events, and Object.prototype left untouched.
import { describe, expect, it } from "vitest";
import { createTenant, ingest } from "../helpers";
import {
	attackRequest,
	batchField,
	chars,
	ev,
	eventField,
	expectError,
	json,
	text,
	UNKNOWN,
	withUsage,
	type Attack,
	type Detail,
	type Expected,
} from "./helpers";

const MAX_BODY = 1_048_576;

/** Raw bytes: UTF-8 text pieces and byte values, in order. */
const bytes = (...parts: (string | number[])[]): Attack => {
	const chunks = parts.map((part) => (typeof part === "string" ? new TextEncoder().encode(part) : Uint8Array.from(part)));
	const out = new Uint8Array(chunks.reduce((n, chunk) => n + chunk.byteLength, 0));
	let offset = 0;
	for (const chunk of chunks) {
		out.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return { body: out };
};

/** An event whose JSON is exactly `size` bytes, padded inside properties. */
function eventOfBytes(size: number): string {
	const shell = JSON.stringify(ev({ properties: { p: "" } })).length;
	return JSON.stringify(ev({ properties: { p: chars(size - shell) } }));
}
/** Properties `levels` deep counting the properties object itself: objects at odd depths, arrays at even. */
function mixedNesting(depth = 1, levels = 17): unknown {
	if (depth === levels) return depth % 2 === 1 ? {} : [];
	return depth % 2 === 1 ? { a: mixedNesting(depth + 1, levels) } : [mixedNesting(depth + 1, levels)];
}
const nestedObjects = (levels: number): Record<string, unknown> => (levels === 1 ? { leaf: 1 } : { a: nestedObjects(levels - 1) });
const deepArrayText = (levels: number) => `${"[".repeat(levels)}1${"]".repeat(levels)}`;
/** A stream of `chunks` × 64 KiB of spaces, sent without a Content-Length. */
const streamOf = (chunks: number) => () =>
	new ReadableStream<Uint8Array>({
		start(controller) {
			for (let i = 0; i < chunks; i++) controller.enqueue(new Uint8Array(65_536).fill(0x20));
			controller.close();
		},
	});

const bodyIssue = (message: string): Expected => batchField("body", message);
const TOO_LARGE: Expected = {
	status: 413,
	code: "payload_too_large",
	details: [{ path: "body", message: `larger than ${MAX_BODY} bytes` }],
};
const NOT_JSON_TYPE: Expected = { status: 415, code: "unsupported_media_type" };
const INVALID_JSON = bodyIssue("invalid JSON");
const INVALID_UTF8 = bodyIssue("invalid UTF-8");
const FORBIDDEN = "forbidden key";

describe("hostile event bodies", () => {
	// [case, the request (built from the test's clock), what the API answers]
	const cases: [string, (now: number) => Attack, Expected][] = [
		// Syntax and encoding
		["invalid JSON", () => text('{"event":'), INVALID_JSON],
		["an empty body", () => text(""), bodyIssue("empty")],
		["a body of only whitespace", () => text("   \n"), INVALID_JSON],
		["a trailing comma", () => text('{"event":"a",}'), INVALID_JSON],
		["single-quoted JSON", () => text("{'event':'a'}"), INVALID_JSON],
		["two concatenated JSON values", () => text('{"event":"a"}{"event":"b"}'), INVALID_JSON],
		["a JavaScript comment", () => text('{"event":"a"} // admin'), INVALID_JSON],
		["NaN as a bare token", () => text('{"event":"a","usage":{"sku":"s","quantity":NaN}}'), INVALID_JSON],
		["Infinity as a bare token", () => text('{"event":"a","performance":{"duration":Infinity}}'), INVALID_JSON],
		["-Infinity as a bare token", () => text('{"event":"a","timestamp":-Infinity}'), INVALID_JSON],
		["undefined as a bare token", () => text('{"event":undefined}'), INVALID_JSON],
		["a byte 0xFF", () => bytes('{"event":"', [0xff], '"}'), INVALID_UTF8],
		["an overlong encoding of /", () => bytes('{"event":"', [0xc0, 0xaf], '"}'), INVALID_UTF8],
		["a UTF-8-encoded surrogate", () => bytes('{"event":"', [0xed, 0xa0, 0x80], '"}'), INVALID_UTF8],
		["a truncated multi-byte sequence", () => bytes('{"event":"a', [0xe2, 0x82]), INVALID_UTF8],
		["a Latin-1 é", () => bytes('{"event":"caf', [0xe9], '"}'), INVALID_UTF8],
		[
			"UTF-16LE with a byte-order mark",
			() =>
				bytes(
					[0xff, 0xfe],
					[...'{"event":"a"}'].flatMap((c) => [c.charCodeAt(0), 0]),
				),
			INVALID_UTF8,
		],
		// Media type
		["text/plain", () => text('{"event":"a"}', "text/plain"), NOT_JSON_TYPE],
		["a form", () => text("event=a", "application/x-www-form-urlencoded"), NOT_JSON_TYPE],
		[
			"multipart form data",
			() => text('--x\r\nContent-Disposition: form-data; name="event"\r\n\r\na\r\n--x--', "multipart/form-data; boundary=x"),
			NOT_JSON_TYPE,
		],
		["no Content-Type", () => text('{"event":"a"}', null), NOT_JSON_TYPE],
		["application/jsonp", () => text('{"event":"a"}', "application/jsonp"), NOT_JSON_TYPE],
		["text/json", () => text('{"event":"a"}', "text/json"), NOT_JSON_TYPE],
		// Size
		["a body of 1 MiB and 1 byte", () => text(eventOfBytes(MAX_BODY + 1)), TOO_LARGE],
		["a streamed body over 1 MiB without Content-Length", () => ({ body: streamOf(17) }), TOO_LARGE],
		["a declared Content-Length over 1 MiB", () => json(ev(), { headers: { "content-length": String(MAX_BODY + 1) } }), TOO_LARGE],
		["a body of exactly 1 MiB (read, then refused for its properties)", () => text(eventOfBytes(MAX_BODY)), eventField("properties")],
		[
			"properties of 32,769 bytes",
			() => json(ev({ properties: { p: chars(32_761) } })),
			eventField("properties", "serialized size 32769 exceeds 32768 bytes"),
		],
		["a 201-character event name", () => json(ev({ event: chars(201) })), eventField("event", "must be 1-200 characters")],
		["a 129-character id", () => json(ev({ id: chars(129) })), eventField("id", "must be 1-128 characters")],
		["a 257-character userId", () => json(ev({ userId: chars(257) })), eventField("userId", "must be 0-256 characters")],
		["a 257-character sessionId", () => json(ev({ sessionId: chars(257) })), eventField("sessionId", "must be 0-256 characters")],
		[
			"1001 events",
			() => json({ events: Array.from({ length: 1001 }, () => ev()) }),
			batchField("events", "must hold 1 to 1000 events, got 1001"),
		],
		["an empty batch", () => json({ events: [] }), batchField("events", "must hold 1 to 1000 events, got 0")],
		// Nesting
		[
			"properties 17 objects deep",
			() => json(ev({ properties: nestedObjects(17) })),
			eventField(`properties${".a".repeat(16)}`, "nesting deeper than 16 levels"),
		],
		[
			"properties 17 levels deep through arrays",
			() => text(`{"event":"a","properties":{"l":${deepArrayText(16)}}}`),
			eventField(`properties.l${"[0]".repeat(15)}`),
		],
		[
			"properties 17 levels of objects and arrays",
			() => json(ev({ properties: mixedNesting() })),
			eventField(`properties${".a[0]".repeat(8)}`),
		],
		[
			"properties 100,000 arrays deep",
			() => text(`{"event":"a","properties":{"l":${deepArrayText(100_000)}}}`),
			eventField(`properties.l${"[0]".repeat(15)}`),
		],
		["100,000 arrays deep in an unknown field", () => text(`{"event":"a","x":${deepArrayText(100_000)}}`), eventField("x", UNKNOWN)],
		// Prototype keys
		["__proto__ at the top level", () => text('{"event":"a","__proto__":{"admin":true}}'), eventField("__proto__", FORBIDDEN)],
		["constructor at the top level", () => json(ev({ constructor: { prototype: {} } })), eventField("constructor", FORBIDDEN)],
		["prototype at the top level", () => json(ev({ prototype: {} })), eventField("prototype", FORBIDDEN)],
		[
			"__proto__ at the batch level",
			() => text('{"__proto__":{"admin":true},"events":[{"event":"a"}]}'),
			batchField("__proto__", FORBIDDEN),
		],
		[
			"__proto__ in usage",
			() => text('{"event":"a","usage":{"sku":"s","quantity":1,"__proto__":{"x":1}}}'),
			eventField("usage.__proto__", FORBIDDEN),
		],
		["constructor in usage", () => json(withUsage({ constructor: 1 })), eventField("usage.constructor", FORBIDDEN)],
		["prototype in usage", () => json(withUsage({ prototype: 1 })), eventField("usage.prototype", FORBIDDEN)],
		[
			"__proto__ in performance",
			() => text('{"event":"a","performance":{"__proto__":{"duration":1}}}'),
			eventField("performance.__proto__", FORBIDDEN),
		],
		[
			"constructor in performance",
			() => json(ev({ performance: { constructor: 1 } })),
			eventField("performance.constructor", FORBIDDEN),
		],
		["prototype in performance", () => json(ev({ performance: { prototype: 1 } })), eventField("performance.prototype", FORBIDDEN)],
		[
			"__proto__ at the top of properties",
			() => text('{"event":"a","properties":{"__proto__":{"isAdmin":true}}}'),
			eventField("properties.__proto__", FORBIDDEN),
		],
		[
			"__proto__ nested in properties",
			() => text('{"event":"a","properties":{"a":{"b":{"__proto__":1}}}}'),
			eventField("properties.a.b.__proto__", FORBIDDEN),
		],
		[
			"constructor in an object inside a properties array",
			() => json(ev({ properties: { list: [1, "x", { constructor: "y" }] } })),
			eventField("properties.list[2].constructor", FORBIDDEN),
		],
		[
			"prototype nested in properties",
			() => json(ev({ properties: { a: { prototype: {} } } })),
			eventField("properties.a.prototype", FORBIDDEN),
		],
	];

	it("holds at least 40 cases", () => {
		expect(cases.length).toBeGreaterThanOrEqual(40);
	});

	it.each(cases)("refuses %s and enqueues nothing", async (_, build, expected) => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(attackRequest(build(Date.now()), tenant.writeKey));
		await expectError(response, expected.status, expected.code, expected.details);
		expect(queue.calls).toEqual([]);
	});

	it("reports at most 100 details for a batch of 1000 bad events, and enqueues nothing", async () => {
		const tenant = await createTenant();
		const bad = Array.from({ length: 1000 }, () => ({ event: "", usage: "x", extra: 1 }));
		const { response, queue } = await ingest(attackRequest(json({ events: bad }), tenant.writeKey));
		expect(response.status).toBe(400);
		const body = await response.json<{ error: { message: string; details: Detail[] } }>();
		expect(body.error.message).toBe("1000 invalid events; nothing was accepted");
		expect(body.error.details).toHaveLength(100);
		expect(body.error.details.slice(0, 3)).toEqual([
			{ index: 0, path: "extra", message: UNKNOWN },
			{ index: 0, path: "event", message: "must be 1-200 characters" },
			{ index: 0, path: "usage", message: "must be an object" },
		]);
		expect(queue.calls).toEqual([]);
	});

	it("refuses a batch of 999 valid events and 1 bad one whole", async () => {
		const tenant = await createTenant();
		const events = [...Array.from({ length: 999 }, (_, i) => ev({ id: `ok-${i}` })), ev({ event: 7 })];
		const { response, queue } = await ingest(attackRequest(json({ events }), tenant.writeKey));
		await expectError(response, 400, "invalid_request", [{ index: 999, path: "event", message: "must be a string" }]);
		expect(queue.calls).toEqual([]);
	});

	it("leaves Object.prototype untouched by __proto__ payloads", async () => {
		const tenant = await createTenant();
		const payloads = [
			'{"event":"a","__proto__":{"polluted":1}}',
			'{"event":"a","properties":{"__proto__":{"polluted":1}}}',
			'{"events":[{"event":"a"}],"__proto__":{"polluted":1}}',
			'{"event":"a","usage":{"sku":"s","quantity":1,"__proto__":{"polluted":1}}}',
		];
		for (const payload of payloads) {
			const { response, queue } = await ingest(attackRequest(text(payload), tenant.writeKey));
			expect(response.status).toBe(400);
			expect(queue.calls).toEqual([]);
		}
		expect(({} as Record<string, unknown>).polluted).toBeUndefined();
	});
});
