// The event validation matrix: every field rule of POST /v1/events, rejected and boundary-accepted.
import { describe, expect, it } from "vitest";
import { createTenant, errorOf, eventsRequest, ingest } from "../helpers";

const MINUTE = 60_000;
const DAY = 86_400_000;

/** JSON text sent as is: for what JSON.stringify cannot say (a literal __proto__ key, 1e400, 0.0000001). */
class Raw {
	constructor(readonly text: string) {}
}
const raw = (text: string) => new Raw(text);

/** A valid event with the given fields replaced. */
const ev = (fields: Record<string, unknown> = {}) => ({ event: "api_call", ...fields });
const usage = (fields: Record<string, unknown>) => ev({ usage: { sku: "tokens", quantity: 1, ...fields } });
const chars = (n: number, ch = "x") => ch.repeat(n);
/** Properties whose JSON is `{"p":"…"}`: 8 bytes plus n copies of ch. */
const sized = (n: number, ch = "x") => ({ p: ch.repeat(n) });
/** Properties nested `levels` objects deep, counting the properties object itself. */
const nestedObjects = (levels: number): Record<string, unknown> => (levels === 1 ? { leaf: 1 } : { a: nestedObjects(levels - 1) });
/** Properties {l: [[…]]} with `levels` levels in all: the properties object and levels-1 arrays. */
const nestedArrays = (levels: number) => {
	let value: unknown = 1;
	for (let i = 1; i < levels; i++) value = [value];
	return { l: value };
};
/** What every bad country is told. */
const COUNTRY = 'must be an ISO 3166-1 alpha-2 code of two capital letters, such as "DE"';
const iso = (ms: number) => new Date(ms).toISOString();
/** Yesterday at 24:00, which Date.parse rolls over to today 00:00 but is no real time of day. */
const yesterdayAt24 = (now: number) => `${iso(now - DAY).slice(0, 10)}T24:00:00Z`;

type Input = Record<string, unknown> | Raw;

async function send(input: Input) {
	const tenant = await createTenant();
	const text = input instanceof Raw ? input.text : JSON.stringify(input);
	return ingest(eventsRequest(text, tenant.writeKey));
}

describe("rejected event fields", () => {
	// [case, event (built from the test's clock), path of the one detail, its message where the spec fixes it]
	const rejected: [string, (now: number) => Input, string, string?][] = [
		["a missing event name", () => ({}), "event"],
		["an empty event name", () => ev({ event: "" }), "event"],
		["a 201-character event name", () => ev({ event: chars(201) }), "event"],
		["a numeric event name", () => ev({ event: 5 }), "event"],
		["a null event name", () => ev({ event: null }), "event"],
		["an empty id", () => ev({ id: "" }), "id"],
		["a 129-character id", () => ev({ id: chars(129) }), "id"],
		["a numeric id", () => ev({ id: 42 }), "id"],
		["an epoch timestamp 35 days and 1 minute ago", (now) => ev({ timestamp: now - 35 * DAY - MINUTE }), "timestamp"],
		["an ISO timestamp 35 days and 1 minute ago", (now) => ev({ timestamp: iso(now - 35 * DAY - MINUTE) }), "timestamp"],
		["an epoch timestamp 6 minutes ahead", (now) => ev({ timestamp: now + 6 * MINUTE }), "timestamp"],
		["an ISO timestamp 6 minutes ahead", (now) => ev({ timestamp: iso(now + 6 * MINUTE) }), "timestamp"],
		["an epoch timestamp in seconds", (now) => ev({ timestamp: Math.floor(now / 1000) }), "timestamp"],
		["a non-integer epoch timestamp", (now) => ev({ timestamp: now - 0.5 }), "timestamp"],
		["February 30th", () => ev({ timestamp: "2026-02-30T00:00:00Z" }), "timestamp"],
		["hour 24 inside the accepted window", (now) => ev({ timestamp: yesterdayAt24(now) }), "timestamp"],
		["a timestamp that is not a date", () => ev({ timestamp: "yesterday" }), "timestamp"],
		["a boolean timestamp", () => ev({ timestamp: true }), "timestamp"],
		["a 257-character userId", () => ev({ userId: chars(257) }), "userId"],
		["a numeric userId", () => ev({ userId: 7 }), "userId"],
		["a 257-character sessionId", () => ev({ sessionId: chars(257) }), "sessionId"],
		["a null sessionId", () => ev({ sessionId: null }), "sessionId"],
		["an empty customerId", () => ev({ customerId: "" }), "customerId", "must be 1-256 characters"],
		["a 257-character customerId", () => ev({ customerId: chars(257) }), "customerId", "must be 1-256 characters"],
		["a numeric customerId", () => ev({ customerId: 42 }), "customerId", "must be a string"],
		["a null customerId", () => ev({ customerId: null }), "customerId", "must be a string"],
		["an empty route", () => ev({ route: "" }), "route", "must be 1-200 characters"],
		["a 201-character route", () => ev({ route: chars(201, "/") }), "route", "must be 1-200 characters"],
		["a route that is an array", () => ev({ route: ["/v1/items/:id"] }), "route", "must be a string"],
		["a lower-case country", () => ev({ country: "de" }), "country", COUNTRY],
		["a three-letter country", () => ev({ country: "DEU" }), "country", COUNTRY],
		["a one-letter country", () => ev({ country: "D" }), "country", COUNTRY],
		["an empty country", () => ev({ country: "" }), "country", COUNTRY],
		["a country with a trailing newline", () => ev({ country: "DE\n" }), "country", COUNTRY],
		["a numeric country", () => ev({ country: 49 }), "country", COUNTRY],
		["properties that are an array", () => ev({ properties: [1] }), "properties"],
		["properties that are a string", () => ev({ properties: "x" }), "properties"],
		["null properties", () => ev({ properties: null }), "properties"],
		["properties 17 objects deep", () => ev({ properties: nestedObjects(17) }), `properties${".a".repeat(16)}`],
		["properties 17 levels deep through arrays", () => ev({ properties: nestedArrays(17) }), `properties.l${"[0]".repeat(15)}`],
		["properties of 32,769 ASCII bytes", () => ev({ properties: sized(32_761) }), "properties"],
		["properties over 32 KB in 2-byte characters", () => ev({ properties: sized(16_381, "é") }), "properties"],
		["properties over 32 KB in 4-byte characters", () => ev({ properties: sized(8_200, "😀") }), "properties"],
		["performance that is a string", () => ev({ performance: "fast" }), "performance"],
		["a negative duration", () => ev({ performance: { duration: -1 } }), "performance.duration"],
		["a string duration", () => ev({ performance: { duration: "12" } }), "performance.duration"],
		["an infinite duration", () => raw(`{"event":"a","performance":{"duration":1e400}}`), "performance.duration"],
		["statusCode 99", () => ev({ performance: { statusCode: 99 } }), "performance.statusCode"],
		["statusCode 600", () => ev({ performance: { statusCode: 600 } }), "performance.statusCode"],
		["a fractional statusCode", () => ev({ performance: { statusCode: 200.5 } }), "performance.statusCode"],
		["a string statusCode", () => ev({ performance: { statusCode: "200" } }), "performance.statusCode"],
		["usage that is a string", () => ev({ usage: "x" }), "usage"],
		["a missing sku", () => ev({ usage: { quantity: 1 } }), "usage.sku"],
		["an empty sku", () => usage({ sku: "" }), "usage.sku"],
		["a 129-character sku", () => usage({ sku: chars(129) }), "usage.sku"],
		["a numeric sku", () => usage({ sku: 5 }), "usage.sku"],
		["a missing quantity", () => ev({ usage: { sku: "tokens" } }), "usage.quantity"],
		["a string quantity that is not a decimal", () => usage({ quantity: "5 tokens" }), "usage.quantity"],
		["a decimal string with 7 fraction digits", () => usage({ quantity: "1.1234567" }), "usage.quantity"],
		["a negative decimal string", () => usage({ quantity: "-1" }), "usage.quantity"],
		["a decimal string over 9,000,000,000", () => usage({ quantity: "9000000000.000001" }), "usage.quantity"],
		// A double near 9e9 cannot hold every 6-digit fraction: this one would arrive as …998.
		[
			"a fractional JSON number of 2^33 or more",
			() => raw(`{"event":"a","usage":{"sku":"s","quantity":8999999999.999999}}`),
			"usage.quantity",
		],
		["the string Infinity as quantity", () => usage({ quantity: "Infinity" }), "usage.quantity"],
		["the string NaN as quantity", () => usage({ quantity: "NaN" }), "usage.quantity"],
		["a quantity that overflows to Infinity", () => raw(`{"event":"a","usage":{"sku":"s","quantity":1e400}}`), "usage.quantity"],
		["a null quantity", () => usage({ quantity: null }), "usage.quantity"],
		["a boolean quantity", () => usage({ quantity: true }), "usage.quantity"],
		["a negative quantity", () => usage({ quantity: -1 }), "usage.quantity"],
		["a negative micro-unit quantity", () => usage({ quantity: -0.000001 }), "usage.quantity"],
		["quantity 0.0000001", () => raw(`{"event":"a","usage":{"sku":"s","quantity":0.0000001}}`), "usage.quantity"],
		["quantity 1e-7", () => raw(`{"event":"a","usage":{"sku":"s","quantity":1e-7}}`), "usage.quantity"],
		["a quantity with 7 fraction digits", () => usage({ quantity: 1.1234567 }), "usage.quantity"],
		["an empty unit", () => usage({ unit: "" }), "usage.unit"],
		["a 33-character unit", () => usage({ unit: chars(33) }), "usage.unit"],
		["a numeric unit", () => usage({ unit: 5 }), "usage.unit"],
		["an unknown top-level field", () => ev({ source: "web" }), "source", "unknown field"],
		["a top-level field in the wrong case", () => ev({ userid: "u1" }), "userid", "unknown field"],
		["an unknown field in usage", () => usage({ qty: 1 }), "usage.qty", "unknown field"],
		["an unknown field in performance", () => ev({ performance: { latency: 5 } }), "performance.latency", "unknown field"],
		["a top-level __proto__ key", () => raw(`{"event":"a","__proto__":{"admin":true}}`), "__proto__", "forbidden key"],
		["a top-level constructor key", () => ev({ constructor: 1 }), "constructor", "forbidden key"],
		["a top-level prototype key", () => ev({ prototype: {} }), "prototype", "forbidden key"],
		[
			"a __proto__ key in usage",
			() => raw(`{"event":"a","usage":{"sku":"s","quantity":1,"__proto__":{}}}`),
			"usage.__proto__",
			"forbidden key",
		],
		["a prototype key in performance", () => ev({ performance: { prototype: 1 } }), "performance.prototype", "forbidden key"],
		[
			"a __proto__ key in properties",
			() => raw(`{"event":"a","properties":{"__proto__":{"x":1}}}`),
			"properties.__proto__",
			"forbidden key",
		],
		[
			"a nested constructor key in properties",
			() => ev({ properties: { a: { constructor: "x" } } }),
			"properties.a.constructor",
			"forbidden key",
		],
		[
			"a __proto__ key inside a properties array",
			() => raw(`{"event":"a","properties":{"list":[1,{"__proto__":1}]}}`),
			"properties.list[1].__proto__",
			"forbidden key",
		],
	];

	it.each(rejected)("rejects %s", async (_, build, path, message) => {
		const { response, queue } = await send(build(Date.now()));
		expect(response.status).toBe(400);
		const error = await errorOf(response);
		expect(error.code).toBe("invalid_request");
		expect(error.details).toEqual([{ index: 0, path, message: message ?? expect.any(String) }]);
		expect(queue.calls).toEqual([]);
	});

	it("reports every bad field of one event", async () => {
		const { response, queue } = await send(ev({ event: "", usage: { sku: "", quantity: -1 }, extra: true }));
		expect(response.status).toBe(400);
		const error = await errorOf(response);
		expect(error.details?.map(({ index, path }) => ({ index, path }))).toEqual([
			{ index: 0, path: "extra" },
			{ index: 0, path: "event" },
			{ index: 0, path: "usage.sku" },
			{ index: 0, path: "usage.quantity" },
		]);
		expect(queue.calls).toEqual([]);
	});

	it("answers 400, not 500, for properties nested far past the limit", async () => {
		const depth = 100_000;
		const text = `{"event":"a","properties":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`;
		const { response, queue } = await send(raw(text));
		expect(response.status).toBe(400);
		expect((await errorOf(response)).details).toEqual([
			{ index: 0, path: `properties${".a".repeat(16)}`, message: expect.any(String) },
		]);
		expect(queue.calls).toEqual([]);
	});
});

describe("accepted event fields", () => {
	const accepted: [string, (now: number) => Input][] = [
		["an event with only a name", () => ev()],
		["a 200-character event name", () => ev({ event: chars(200) })],
		["a 128-character id", () => ev({ id: chars(128) })],
		["a 1-character id", () => ev({ id: "x" })],
		["an epoch timestamp 35 days less 1 minute ago", (now) => ev({ timestamp: now - 35 * DAY + MINUTE })],
		["an ISO timestamp 35 days less 1 minute ago", (now) => ev({ timestamp: iso(now - 35 * DAY + MINUTE) })],
		["an epoch timestamp 4 minutes ahead", (now) => ev({ timestamp: now + 4 * MINUTE })],
		["an ISO timestamp 4 minutes ahead", (now) => ev({ timestamp: iso(now + 4 * MINUTE) })],
		["an ISO timestamp with an offset", (now) => ev({ timestamp: iso(now - DAY).replace(/\.\d{3}Z$/, "+02:00") })],
		["a 256-character userId", () => ev({ userId: chars(256) })],
		["an empty userId", () => ev({ userId: "" })],
		["a 256-character sessionId", () => ev({ sessionId: chars(256) })],
		["a 1-character customerId", () => ev({ customerId: "c" })],
		["a 256-character customerId", () => ev({ customerId: chars(256) })],
		["a 1-character route", () => ev({ route: "/" })],
		["a 200-character route", () => ev({ route: chars(200, "/") })],
		["country DE", () => ev({ country: "DE" })],
		["country XX (unknown)", () => ev({ country: "XX" })],
		["country T1 (Tor)", () => ev({ country: "T1" })],
		["empty properties", () => ev({ properties: {} })],
		["properties 16 objects deep", () => ev({ properties: nestedObjects(16) })],
		["properties 16 levels deep through arrays", () => ev({ properties: nestedArrays(16) })],
		["properties of exactly 32,768 ASCII bytes", () => ev({ properties: sized(32_760) })],
		["properties of exactly 32,768 bytes in 2-byte characters", () => ev({ properties: sized(16_380, "é") })],
		["properties of exactly 32,768 bytes in 4-byte characters", () => ev({ properties: sized(8_190, "😀") })],
		["empty performance", () => ev({ performance: {} })],
		["duration 0", () => ev({ performance: { duration: 0 } })],
		["a fractional duration", () => ev({ performance: { duration: 12.5 } })],
		["statusCode 100", () => ev({ performance: { statusCode: 100 } })],
		["statusCode 599", () => ev({ performance: { statusCode: 599 } })],
		["quantity 0", () => usage({ quantity: 0 })],
		["quantity 0.000001", () => usage({ quantity: 0.000001 })],
		["a quantity with 6 fraction digits", () => usage({ quantity: 123.456789 })],
		["a quantity just below 2^33 with 6 fraction digits", () => usage({ quantity: 8589934591.999999 })],
		["a whole quantity of 9,000,000,000", () => usage({ quantity: 9_000_000_000 })],
		["a decimal string quantity", () => usage({ quantity: "8999999999.999999" })],
		["a 128-character sku", () => usage({ sku: chars(128) })],
		["a 32-character unit", () => usage({ unit: chars(32) })],
	];

	it.each(accepted)("accepts %s", async (_, build) => {
		const { response, queue } = await send(build(Date.now()));
		expect(response.status).toBe(202);
		expect(await response.json()).toEqual({ accepted: 1, ids: [expect.any(String)] });
		expect(queue.messages.flatMap((message) => message.events)).toHaveLength(1);
	});
});
