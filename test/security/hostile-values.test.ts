// Hostile input against POST /v1/events (each refused with the exact status and field, nothing
// enqueued), and method and path abuse across every route (never a 5xx).
import { describe, expect, it } from "vitest";
import { aggregator, d1Usage } from "../aggregator/fixtures";
import { ADMIN_TOKEN, call, createTenant, type TestTenant } from "../helpers/api";
import { RecordingQueue } from "../helpers/queues";
import { EVENTS_URL, ingest } from "../producer/helpers";
import { expectError, type Detail } from "./helpers";

const MINUTE = 60_000;
const DAY = 86_400_000;
const MAX_BODY = 1_048_576;

/** One request to POST /v1/events: its body, Content-Type (null: none), query and extra headers. */
interface Attack {
	body: string | Uint8Array | (() => ReadableStream<Uint8Array>);
	contentType?: string | null;
	query?: string;
	headers?: Record<string, string>;
}

interface Expected {
	status: number;
	code: string;
	details?: Detail[];
}

const json = (value: unknown, extra: Omit<Attack, "body"> = {}): Attack => ({ body: JSON.stringify(value), ...extra });
/** JSON text sent as is: what JSON.stringify cannot say (a literal __proto__ key, NaN, 1e400). */
const text = (body: string, contentType: string | null = "application/json"): Attack => ({ body, contentType });
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

/** A valid event with the given fields replaced. */
const ev = (fields: Record<string, unknown> = {}) => ({ event: "api_call", ...fields });
const withUsage = (fields: Record<string, unknown>) => ev({ usage: { sku: "tokens", quantity: 1, ...fields } });
const chars = (n: number) => "x".repeat(n);
const iso = (ms: number) => new Date(ms).toISOString();
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

const eventField = (path: string, message: unknown = expect.any(String)): Expected => ({
	status: 400,
	code: "invalid_request",
	details: [{ index: 0, path, message }],
});
const batchField = (path: string, message: unknown = expect.any(String)): Expected => ({
	status: 400,
	code: "invalid_request",
	details: [{ path, message }],
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
const UNKNOWN = "unknown field";
const NOT_ISO = "must be an ISO 8601 date-time or epoch milliseconds";

function eventsRequest(attack: Attack, key: string): Request {
	const headers = new Headers(attack.headers);
	headers.set("authorization", `Bearer ${key}`);
	const contentType = attack.contentType === undefined ? "application/json" : attack.contentType;
	if (contentType !== null) headers.set("content-type", contentType);
	const body = typeof attack.body === "function" ? attack.body() : attack.body;
	return new Request(EVENTS_URL + (attack.query ?? ""), { method: "POST", body, headers });
}

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
		// Numbers that are not quantities
		[
			"the string NaN as quantity",
			() => json(withUsage({ quantity: "NaN" })),
			eventField("usage.quantity", "must be a number, or a decimal string with at most 6 fraction digits"),
		],
		[
			"the string Infinity as quantity",
			() => json(withUsage({ quantity: "Infinity" })),
			eventField("usage.quantity", "must be a number, or a decimal string with at most 6 fraction digits"),
		],
		["the string Infinity as duration", () => json(ev({ performance: { duration: "Infinity" } })), eventField("performance.duration")],
		["the string NaN as timestamp", () => json(ev({ timestamp: "NaN" })), eventField("timestamp", NOT_ISO)],
		[
			"a quantity that overflows to Infinity",
			() => text('{"event":"a","usage":{"sku":"s","quantity":1e400}}'),
			eventField("usage.quantity", "must be finite"),
		],
		[
			"a quantity that overflows to -Infinity",
			() => text('{"event":"a","usage":{"sku":"s","quantity":-1e400}}'),
			eventField("usage.quantity", "must be finite"),
		],
		["a negative quantity", () => json(withUsage({ quantity: -1 })), eventField("usage.quantity", "must be ≥ 0")],
		[
			"a quantity with 7 fraction digits",
			() => json(withUsage({ quantity: 1.1234567 })),
			eventField("usage.quantity", "has more than 6 fraction digits"),
		],
		[
			"quantity 1e-7",
			() => text('{"event":"a","usage":{"sku":"s","quantity":1e-7}}'),
			eventField("usage.quantity", "has more than 6 fraction digits"),
		],
		["a quantity over 9e9", () => json(withUsage({ quantity: 9_000_000_001 })), eventField("usage.quantity", "must be ≤ 9000000000")],
		["quantity 1e300", () => json(withUsage({ quantity: 1e300 })), eventField("usage.quantity", "must be ≤ 9000000000")],
		// Timestamps
		[
			"a timestamp 35 days and 1 second ago",
			(now) => json(ev({ timestamp: now - 35 * DAY - 1000 })),
			eventField("timestamp", "is more than 35 days in the past (older events cannot be deduplicated)"),
		],
		[
			"a timestamp of epoch 0",
			() => json(ev({ timestamp: 0 })),
			eventField("timestamp", "is more than 35 days in the past (older events cannot be deduplicated)"),
		],
		[
			"a negative epoch timestamp",
			() => json(ev({ timestamp: -8_640_000_000_000_000 })),
			eventField("timestamp", "is more than 35 days in the past (older events cannot be deduplicated)"),
		],
		[
			"a timestamp 5 minutes and 1 second ahead",
			(now) => json(ev({ timestamp: now + 5 * MINUTE + 1000 })),
			eventField("timestamp", "is more than 5 minutes in the future"),
		],
		[
			"an ISO timestamp in the year 9999",
			() => json(ev({ timestamp: "9999-12-31T23:59:59Z" })),
			eventField("timestamp", "is more than 5 minutes in the future"),
		],
		["February 30th", () => json(ev({ timestamp: "2026-02-30T00:00:00Z" })), eventField("timestamp", NOT_ISO)],
		["month 13", () => json(ev({ timestamp: "2026-13-01T00:00:00Z" })), eventField("timestamp", NOT_ISO)],
		["minute 60 of today", (now) => json(ev({ timestamp: `${iso(now).slice(0, 10)}T00:60:00Z` })), eventField("timestamp", NOT_ISO)],
		["a leap second", (now) => json(ev({ timestamp: `${iso(now - DAY).slice(0, 10)}T23:59:60Z` })), eventField("timestamp", NOT_ISO)],
		["a date without a time", (now) => json(ev({ timestamp: iso(now).slice(0, 10) })), eventField("timestamp", NOT_ISO)],
		["a date-time without a zone", (now) => json(ev({ timestamp: iso(now).slice(0, 19) })), eventField("timestamp", NOT_ISO)],
		[
			"a non-integer epoch timestamp",
			(now) => json(ev({ timestamp: now - 0.5 })),
			eventField("timestamp", "epoch milliseconds must be an integer"),
		],
		["an epoch past 2^53", () => json(ev({ timestamp: 2 ** 53 })), eventField("timestamp", "epoch milliseconds must be an integer")],
		[
			"1e999 as timestamp",
			() => text('{"event":"a","timestamp":1e999}'),
			eventField("timestamp", "epoch milliseconds must be an integer"),
		],
		// Wrong types
		["a numeric id", () => json(ev({ id: 42 })), eventField("id", "must be a string")],
		["a numeric event name", () => json(ev({ event: 5 })), eventField("event", "must be a string")],
		["a missing event name", () => json({ id: "e1" }), eventField("event", "must be a string")],
		[
			"a boolean timestamp",
			() => json(ev({ timestamp: true })),
			eventField("timestamp", "must be an ISO 8601 string or epoch milliseconds"),
		],
		["an object userId", () => json(ev({ userId: { $ne: null } })), eventField("userId", "must be a string")],
		["an array sessionId", () => json(ev({ sessionId: ["s1"] })), eventField("sessionId", "must be a string")],
		["properties that are an array", () => json(ev({ properties: [{ a: 1 }] })), eventField("properties", "must be an object")],
		["properties that are a string", () => json(ev({ properties: "{}" })), eventField("properties", "must be an object")],
		["null properties", () => json(ev({ properties: null })), eventField("properties", "must be an object")],
		["performance that is a string", () => json(ev({ performance: "fast" })), eventField("performance", "must be an object")],
		[
			"a negative duration",
			() => json(ev({ performance: { duration: -1 } })),
			eventField("performance.duration", "must be a number of milliseconds from 0 to 86400000"),
		],
		[
			"a string duration",
			() => json(ev({ performance: { duration: "12" } })),
			eventField("performance.duration", "must be a number of milliseconds from 0 to 86400000"),
		],
		// Two of these would sum to Infinity, which D1 stores as NULL: every duration is bounded by a day.
		[
			"a duration of 1e308",
			() => json(ev({ performance: { duration: 1e308 } })),
			eventField("performance.duration", "must be a number of milliseconds from 0 to 86400000"),
		],
		[
			"a duration of a day and a millisecond",
			() => json(ev({ performance: { duration: 86_400_001 } })),
			eventField("performance.duration", "must be a number of milliseconds from 0 to 86400000"),
		],
		[
			"statusCode 99",
			() => json(ev({ performance: { statusCode: 99 } })),
			eventField("performance.statusCode", "must be an integer 100-599"),
		],
		[
			"statusCode 600",
			() => json(ev({ performance: { statusCode: 600 } })),
			eventField("performance.statusCode", "must be an integer 100-599"),
		],
		[
			"statusCode 200.5",
			() => json(ev({ performance: { statusCode: 200.5 } })),
			eventField("performance.statusCode", "must be an integer 100-599"),
		],
		["usage that is an array", () => json(ev({ usage: [{ sku: "s", quantity: 1 }] })), eventField("usage", "must be an object")],
		["an empty sku", () => json(withUsage({ sku: "" })), eventField("usage.sku", "must be 1-128 characters")],
		["a numeric sku", () => json(withUsage({ sku: 5 })), eventField("usage.sku", "must be a string")],
		["a 33-character unit", () => json(withUsage({ unit: chars(33) })), eventField("usage.unit", "must be 1-32 characters")],
		["a body that is an array", () => json([ev()]), eventField("$", "must be an event object")],
		["a body that is null", () => text("null"), eventField("$", "must be an event object")],
		["a body that is a string", () => json("api_call"), eventField("$", "must be an event object")],
		["events that are not an array", () => json({ events: { 0: ev() } }), batchField("events", "must be an array")],
		// Unknown fields, and naming a tenant
		["an unknown top-level field", () => json(ev({ admin: true })), eventField("admin", UNKNOWN)],
		["an unknown field in usage", () => json(withUsage({ price: 0 })), eventField("usage.price", UNKNOWN)],
		["an unknown field in performance", () => json(ev({ performance: { latency: 5 } })), eventField("performance.latency", UNKNOWN)],
		["a tenant field in the event", () => json(ev({ tenant: "someone-else" })), eventField("tenant", UNKNOWN)],
		["a tenant field beside the batch", () => json({ tenant: "someone-else", events: [ev()] }), batchField("tenant", UNKNOWN)],
		// The ack mode
		["?ack=async", () => json(ev(), { query: "?ack=async" }), batchField("ack", 'must be "durable" or absent')],
		["an empty ?ack=", () => json(ev(), { query: "?ack=" }), batchField("ack", 'must be "durable" or absent')],
		["?ack=DURABLE", () => json(ev(), { query: "?ack=DURABLE" }), batchField("ack", 'must be "durable" or absent')],
	];

	it("holds at least 40 cases", () => {
		expect(cases.length).toBeGreaterThanOrEqual(40);
	});

	it.each(cases)("refuses %s and enqueues nothing", async (_, build, expected) => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(eventsRequest(build(Date.now()), tenant.writeKey));
		await expectError(response, expected.status, expected.code, expected.details);
		expect(queue.calls).toEqual([]);
	});

	it("reports at most 100 details for a batch of 1000 bad events, and enqueues nothing", async () => {
		const tenant = await createTenant();
		const bad = Array.from({ length: 1000 }, () => ({ event: "", usage: "x", extra: 1 }));
		const { response, queue } = await ingest(eventsRequest(json({ events: bad }), tenant.writeKey));
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
		const { response, queue } = await ingest(eventsRequest(json({ events }), tenant.writeKey));
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
			const { response, queue } = await ingest(eventsRequest(text(payload), tenant.writeKey));
			expect(response.status).toBe(400);
			expect(queue.calls).toEqual([]);
		}
		expect(({} as Record<string, unknown>).polluted).toBeUndefined();
	});
});

describe("hostile values that pass validation", () => {
	// KNOWN BUG (src/aggregator/aggregator.ts, addUsage): the in-memory rollup key is
	// `${sku}\u0000${unit}\u0000${hour}`, so sku "a" + unit "b\u0000c" and sku "a\u0000b" + unit "c"
	// share a key and the second event's quantity is billed to the first's sku and unit. Validation
	// lets NUL through in both fields. This test states the correct behaviour; it is marked `fails`
	// until the key is made unambiguous (e.g. JSON.stringify([sku, unit, hour])): then drop `.fails`.
	it("bills a sku and unit holding NUL characters apart from the pair they resemble", async () => {
		const tenant = await createTenant();
		const timestamp = Date.now() - MINUTE;
		const events = [
			{ id: "nul-1", event: "a", timestamp, usage: { sku: "a", unit: "b\u0000c", quantity: 1 } },
			{ id: "nul-2", event: "a", timestamp, usage: { sku: "a\u0000b", unit: "c", quantity: 2 } },
		];
		const { response, queue } = await ingest(eventsRequest(json({ events }), tenant.writeKey));
		expect(response.status).toBe(202);
		// The slice the consumer hands the aggregator: both events of the one queue message.
		const [message] = queue.messages;
		await aggregator(tenant.id).ingest(tenant.id, message!.events);
		await aggregator(tenant.id).flush();
		const hour = new Date(Math.floor(timestamp / 3_600_000) * 3_600_000).toISOString();
		expect(await d1Usage(tenant.id)).toEqual([
			{ sku: "a", unit: "b\u0000c", hour, micros: "1000000", events: 1 },
			{ sku: "a\u0000b", unit: "c", hour, micros: "2000000", events: 1 },
		]);
	});
});

describe("method and path abuse", () => {
	const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] as const;
	const GARBAGE_KEY = "ml_w_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

	/** Every route the router knows, with its parameters filled, plus odd and oversized paths. */
	function paths(tenant: TestTenant): string[] {
		return [
			"/v1/health",
			"/v1/events",
			"/v1/flush",
			"/v1/usage",
			"/v1/stats",
			"/v1/metrics",
			"/v1/rejections",
			"/v1/admin/tenants",
			`/v1/admin/tenants/${tenant.id}/keys`,
			"/v1/admin/keys/ml_w_AAAAAAAA",
			"/v1/admin/metrics",
			"/v1/admin/dead-letters",
			"/v1/admin/dead-letters/replay",
			"/v1/admin/dead-letters/no-such-id",
			"/v1/track",
			"/v1/identify",
			"/v1/page",
			"/v1/screen",
			"/v1/group",
			"/v1/alias",
			"/v1/batch",
			"/batch/",
			"/capture/",
			"/e/",
			"/i/v0/e/",
			"/",
			"/v1/events/../usage",
			"//v1//events",
			"/v1/events/",
			"/v1%2Fevents",
			"/v1/events%00",
			"/v1/admin/keys/%E0%A4%A",
			"/v1/admin/dead-letters/%ZZ",
			"/v1/admin/tenants/%ZZ/keys",
			"/v1/admin/tenants/a%2Fb/keys",
			`/v1/${"a".repeat(100_000)}`,
			`/v1/admin/tenants/${"x".repeat(10_000)}/keys`,
			"/v1/usage?%ZZ=%%%&from=%E0%A4%A",
			`/v1/stats?granularity=${"x".repeat(50_000)}`,
			`/v1/usage?from=${"9".repeat(400)}`,
			"/v1/usage?from=0000-01-01&to=9999-12-31&granularity=month",
			"/v1/events?ack=%00",
			"/v1/admin/dead-letters?cursor=9999999999999999&limit=1e2",
			"/v1/admin/dead-letters?tenant=%00&tenant=%FF",
			"/v1/rejections?cursor=%00&limit=%FF",
		];
	}

	it("never answers a 5xx, for any route, method and key", async () => {
		const tenant = await createTenant();
		const keys = [undefined, tenant.writeKey, tenant.readKey, ADMIN_TOKEN, GARBAGE_KEY];
		const failures: string[] = [];
		let requests = 0;
		for (const path of paths(tenant)) {
			for (const method of METHODS) {
				const body = method === "GET" || method === "HEAD" ? undefined : JSON.stringify(ev());
				const responses = await Promise.all(keys.map((key) => call(path, { method, key, body })));
				responses.forEach((response, i) => {
					requests++;
					if (response.status >= 500) failures.push(`${method} ${path.slice(0, 80)} key#${i} → ${response.status}`);
				});
			}
		}
		expect(failures).toEqual([]);
		expect(requests).toBe(paths(tenant).length * METHODS.length * keys.length);
	});

	type Who = "none" | "write" | "read" | "admin";
	// [method, path, who calls, status, error code, details or Allow header]
	const selection: [string, string, Who, number, string | null, Detail[] | string | null][] = [
		["HEAD", "/v1/health", "none", 405, null, "GET"],
		["OPTIONS", "/v1/events", "write", 405, "method_not_allowed", "POST"],
		["PUT", "/v1/events", "write", 405, "method_not_allowed", "POST"],
		["PATCH", "/v1/flush", "read", 405, "method_not_allowed", "POST"],
		["DELETE", "/v1/usage", "read", 405, "method_not_allowed", "GET"],
		["PUT", "/v1/admin/tenants", "admin", 405, "method_not_allowed", "POST"],
		["GET", "/v1/admin/keys/ml_w_AAAAAAAA", "admin", 405, "method_not_allowed", "DELETE"],
		["PATCH", "/v1/admin/dead-letters/replay", "admin", 405, "method_not_allowed", "POST"],
		["GET", "/v1/events/../usage", "read", 200, null, null],
		["POST", "/v1/events/../usage", "write", 405, "method_not_allowed", "GET"],
		["POST", "//v1//events", "write", 404, "not_found", null],
		["POST", "/v1%2Fevents", "write", 404, "not_found", null],
		["POST", "/v1/events/extra", "write", 404, "not_found", null],
		["GET", `/v1/${"a".repeat(100_000)}`, "read", 404, "not_found", null],
		[
			"DELETE",
			"/v1/admin/keys/%E0%A4%A",
			"admin",
			400,
			"invalid_request",
			[{ path: "prefix", message: "is not valid percent-encoding" }],
		],
		["DELETE", "/v1/admin/keys/%E0%A4%A", "write", 401, "unauthorized", null],
		[
			"DELETE",
			"/v1/admin/dead-letters/%ZZ",
			"admin",
			400,
			"invalid_request",
			[{ path: "id", message: "is not valid percent-encoding" }],
		],
		["DELETE", "/v1/admin/keys/ml_w_AAAAAAAA", "admin", 404, "not_found", null],
		[
			"DELETE",
			"/v1/admin/keys/short",
			"admin",
			400,
			"invalid_request",
			[{ path: "prefix", message: "must be the key's first 13 characters" }],
		],
		["GET", "/v1/usage?%ZZ=1", "read", 400, "invalid_request", [{ path: "%ZZ", message: "unknown query parameter" }]],
		[
			"GET",
			"/v1/usage?from=%E0%A4%A",
			"read",
			400,
			"invalid_request",
			[{ path: "from", message: "must be an ISO 8601 date or date-time" }],
		],
		[
			"GET",
			`/v1/stats?granularity=${"x".repeat(50_000)}`,
			"read",
			400,
			"invalid_request",
			[{ path: "granularity", message: "must be one of minute, hour, day" }],
		],
		[
			"GET",
			"/v1/usage?from=0000-01-01&to=9999-12-31&granularity=month",
			"read",
			400,
			"invalid_request",
			[{ path: "granularity", message: expect.any(String) }],
		],
		[
			"GET",
			"/v1/admin/dead-letters?cursor=9999999999999999",
			"admin",
			400,
			"invalid_request",
			[{ path: "cursor", message: "must be a cursor from a previous page" }],
		],
		[
			"GET",
			"/v1/admin/dead-letters?limit=1e2",
			"admin",
			400,
			"invalid_request",
			[{ path: "limit", message: "must be an integer 1-100" }],
		],
		[
			"GET",
			"/v1/admin/dead-letters?secret=1",
			"admin",
			400,
			"invalid_request",
			[{ path: "secret", message: "unknown query parameter" }],
		],
		["POST", "/v1/events?ack=%00", "write", 400, "invalid_request", [{ path: "ack", message: 'must be "durable" or absent' }]],
	];

	it.each(selection)("answers %s %s (%s) with %i", async (method, path, who, status, code, extra) => {
		const tenant = await createTenant();
		const key = { none: undefined, write: tenant.writeKey, read: tenant.readKey, admin: ADMIN_TOKEN }[who];
		const body = method === "GET" || method === "HEAD" ? undefined : JSON.stringify(ev());
		const response = await call(path, { method, key, body });
		expect(response.status).toBe(status);
		if (typeof extra === "string") expect(response.headers.get("allow")).toBe(extra);
		if (code !== null) await expectError(response, status, code, Array.isArray(extra) ? extra : undefined);
	});

	it("percent-decodes a tenant id in the key route and finds no such tenant", async () => {
		const response = await call("/v1/admin/tenants/a%2Fb/keys", {
			method: "POST",
			key: ADMIN_TOKEN,
			body: JSON.stringify({ scope: "read" }),
		});
		await expectError(response, 404, "not_found");
	});

	it("answers 400 naming the tenant id for broken percent-encoding in the key route", async () => {
		const response = await call("/v1/admin/tenants/%ZZ/keys", {
			method: "POST",
			key: ADMIN_TOKEN,
			body: JSON.stringify({ scope: "read" }),
		});
		await expectError(response, 400, "invalid_request", [{ path: "id", message: "is not valid percent-encoding" }]);
	});

	it("enqueues nothing for an event sent to a path that only resembles /v1/events", async () => {
		const tenant = await createTenant();
		for (const path of ["//v1//events", "/v1/events/extra", "/V1/EVENTS", "/v1/events%00"]) {
			const queue = new RecordingQueue();
			const request = new Request(`https://meterline.test${path}`, {
				method: "POST",
				body: JSON.stringify(ev()),
				headers: { authorization: `Bearer ${tenant.writeKey}`, "content-type": "application/json" },
			});
			const { response } = await ingest(request, queue);
			expect(response.status).toBe(404);
			expect(queue.calls).toEqual([]);
		}
	});
});
