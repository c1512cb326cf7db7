// Hostile values at POST /v1/events, each refused with the exact status and field and nothing
// enqueued: numbers that are not quantities, timestamps out of range or not ISO, wrong types,
// unknown fields, a tenant named in the body, a bad ack mode; and values that pass validation
// (NUL in a sku and unit) billed apart.
import { describe, expect, it } from "vitest";
import { aggregator, d1Usage } from "../aggregator/helpers";
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
	type Expected,
} from "./helpers";

const MINUTE = 60_000;
const DAY = 86_400_000;

const iso = (ms: number) => new Date(ms).toISOString();
const NOT_ISO = "must be an ISO 8601 date-time or epoch milliseconds";

describe("hostile event bodies", () => {
	// [case, the request (built from the test's clock), what the API answers]
	const cases: [string, (now: number) => Attack, Expected][] = [
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

	it.each(cases)("refuses %s and enqueues nothing", async (_, build, expected) => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(attackRequest(build(Date.now()), tenant.writeKey));
		await expectError(response, expected.status, expected.code, expected.details);
		expect(queue.calls).toEqual([]);
	});
});

describe("hostile values that pass validation", () => {
	// NUL is legal in sku and unit, so no in-memory or SQLite key may join the two with a separator:
	// sku "a" + unit "b\u0000c" and sku "a\u0000b" + unit "c" must stay two rows.
	it("bills a sku and unit holding NUL characters apart from the pair they resemble", async () => {
		const tenant = await createTenant();
		const timestamp = Date.now() - MINUTE;
		const events = [
			{ id: "nul-1", event: "a", timestamp, usage: { sku: "a", unit: "b\u0000c", quantity: 1 } },
			{ id: "nul-2", event: "a", timestamp, usage: { sku: "a\u0000b", unit: "c", quantity: 2 } },
		];
		const { response, queue } = await ingest(attackRequest(json({ events }), tenant.writeKey));
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
