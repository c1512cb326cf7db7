// Meter definitions: every validation rule accepted at its bound and refused past it, with its exact
// issues (readMeter is covered by read-meter.test.ts).
import { describe, expect, it } from "vitest";
import { SLUG_RULE, validateMeter } from "../../src/meters/model";

const chars = (n: number, ch = "x") => ch.repeat(n);
const count = (fields: Record<string, unknown> = {}) => ({ slug: "api_calls", eventType: "api_call", aggregation: "COUNT", ...fields });
const sum = (fields: Record<string, unknown> = {}) => count({ aggregation: "SUM", valueProperty: "tokens", ...fields });
const VALUE = "must be a string (at most 256 characters), a finite number or a boolean";
const keys = (n: number, value: (i: number) => unknown) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value(i)]));

describe("validateMeter", () => {
	it("accepts a COUNT meter and fills in empty groupBy and filter", () => {
		expect(validateMeter(count())).toEqual({
			meter: { slug: "api_calls", eventType: "api_call", aggregation: "COUNT", groupBy: {}, filter: {} },
			issues: [],
		});
	});

	it("accepts a full definition and puts its fields in one order", () => {
		const body = {
			description: "Tokens by model",
			filter: { "$.plan": ["pro", "team"], "usage.sku": "gpt", flag: true, tier: 2 },
			groupBy: { model: "$.model", region: "geo.region", sku: "usage.sku" },
			valueProperty: "usage.quantity",
			aggregation: "SUM",
			eventType: "llm_call",
			slug: "llm_tokens",
		};
		const { meter, issues } = validateMeter(body);
		expect(issues).toEqual([]);
		expect(Object.keys(meter!)).toEqual(["slug", "eventType", "aggregation", "valueProperty", "groupBy", "filter", "description"]);
		expect(meter).toEqual(body);
	});

	it.each(["SUM", "MIN", "MAX", "AVG", "UNIQUE_COUNT", "LATEST"])("accepts %s with a valueProperty", (aggregation) => {
		expect(validateMeter(sum({ aggregation })).issues).toEqual([]);
	});

	it.each([
		["a 64-character slug", { slug: chars(64, "a") }],
		["a slug of words and digits", { slug: "v2_api_calls_3" }],
		["a 200-character event type", { eventType: chars(200) }],
		["a path 5 keys deep", { valueProperty: "a.b.c.d.e" }],
		["a $. path 5 keys deep", { valueProperty: "$.a.b.c.d.e" }],
		["a 128-character key", { valueProperty: chars(128) }],
		["a PostHog $ key", { valueProperty: "$duration" }],
		["a $.usage.quantity property path in groupBy", { groupBy: { q: "$.usage.quantity" } }],
		["5 group keys", { groupBy: keys(5, (i) => `p${i}`) }],
		["10 filter keys", { filter: keys(10, (i) => i) }],
		["100 filter values", { filter: { plan: Array.from({ length: 100 }, (_, i) => i) } }],
		["a 256-character filter string", { filter: { plan: chars(256) } }],
		["a 1000-character description", { description: chars(1000) }],
		["UNIQUE_COUNT of usage.sku", { aggregation: "UNIQUE_COUNT", valueProperty: "usage.sku" }],
	])("accepts %s", (_, fields) => {
		expect(validateMeter(sum(fields)).issues).toEqual([]);
	});

	it.each([
		["an array body", [], [["body", "must be a JSON object"]]],
		["a null body", null, [["body", "must be a JSON object"]]],
		[
			"an empty object",
			{},
			[
				["slug", "is required"],
				["eventType", "is required"],
				["aggregation", "is required"],
			],
		],
		["an unknown field", count({ windowSize: "HOUR" }), [["windowSize", "unknown field"]]],
		[
			"a __proto__ key",
			JSON.parse('{"slug":"a","eventType":"e","aggregation":"COUNT","__proto__":{}}'),
			[["__proto__", "forbidden key"]],
		],
		["an upper-case slug", count({ slug: "API" }), [["slug", SLUG_RULE]]],
		["a slug with a double underscore", count({ slug: "a__b" }), [["slug", SLUG_RULE]]],
		["a slug with a leading underscore", count({ slug: "_a" }), [["slug", SLUG_RULE]]],
		["a slug with a hyphen", count({ slug: "api-calls" }), [["slug", SLUG_RULE]]],
		["a 65-character slug", count({ slug: chars(65, "a") }), [["slug", SLUG_RULE]]],
		["a number slug", count({ slug: 5 }), [["slug", SLUG_RULE]]],
		["an empty event type", count({ eventType: "" }), [["eventType", "must be a string of 1-200 characters"]]],
		["a 201-character event type", count({ eventType: chars(201) }), [["eventType", "must be a string of 1-200 characters"]]],
		[
			"a lower-case aggregation",
			count({ aggregation: "sum" }),
			[["aggregation", "must be one of SUM, COUNT, MIN, MAX, AVG, UNIQUE_COUNT, LATEST"]],
		],
		[
			"an unknown aggregation",
			count({ aggregation: "P99" }),
			[["aggregation", "must be one of SUM, COUNT, MIN, MAX, AVG, UNIQUE_COUNT, LATEST"]],
		],
		[
			"COUNT with a valueProperty",
			count({ valueProperty: "tokens" }),
			[["valueProperty", "must be absent for COUNT, which counts events"]],
		],
		["SUM without a valueProperty", count({ aggregation: "SUM" }), [["valueProperty", "is required for SUM"]]],
		["LATEST without a valueProperty", count({ aggregation: "LATEST" }), [["valueProperty", "is required for LATEST"]]],
		["SUM of usage.sku", sum({ valueProperty: "usage.sku" }), [["valueProperty", "is always a string; SUM needs a number"]]],
		[
			"MAX of usage.unit",
			sum({ aggregation: "MAX", valueProperty: "usage.unit" }),
			[["valueProperty", "is always a string; MAX needs a number"]],
		],
		["a null valueProperty", sum({ valueProperty: null }), [["valueProperty", "must be a property path (a string)"]]],
		["an empty path", sum({ valueProperty: "" }), [["valueProperty", 'must be non-empty keys joined by "."']]],
		["a path with an empty key", sum({ valueProperty: "a..b" }), [["valueProperty", 'must be non-empty keys joined by "."']]],
		["a bare $. prefix", sum({ valueProperty: "$." }), [["valueProperty", 'must be non-empty keys joined by "."']]],
		["a path 6 keys deep", sum({ valueProperty: "a.b.c.d.e.f" }), [["valueProperty", "must be at most 5 keys deep"]]],
		["a __proto__ key in a path", sum({ valueProperty: "__proto__.x" }), [["valueProperty", "may not use the key __proto__"]]],
		["a constructor key in a path", sum({ valueProperty: "a.constructor" }), [["valueProperty", "may not use the key constructor"]]],
		["a 129-character key", sum({ valueProperty: chars(129) }), [["valueProperty", "has a key longer than 128 characters"]]],
		[
			"an array index",
			sum({ valueProperty: "$.items[0]" }),
			[["valueProperty", "may not use [, ] or *: array indexes and wildcards are not supported"]],
		],
		[
			"a wildcard",
			sum({ valueProperty: "a.*" }),
			[["valueProperty", "may not use [, ] or *: array indexes and wildcards are not supported"]],
		],
		["an array groupBy", count({ groupBy: ["a"] }), [["groupBy", "must be an object of group names to property paths"]]],
		["6 group keys", count({ groupBy: keys(6, (i) => `p${i}`) }), [["groupBy", "must have at most 5 keys"]]],
		[
			"a group name with a space",
			count({ groupBy: { "my region": "r" } }),
			[["groupBy.my region", 'must be named by 1-64 letters, digits, "_" or "-"']],
		],
		[
			"a 65-character group name",
			count({ groupBy: { [chars(65)]: "r" } }),
			[[`groupBy.${chars(65)}`, 'must be named by 1-64 letters, digits, "_" or "-"']],
		],
		["a constructor group name", count({ groupBy: JSON.parse('{"constructor":"r"}') }), [["groupBy.constructor", "forbidden key"]]],
		["a bad group path", count({ groupBy: { region: "geo..region" } }), [["groupBy.region", 'must be non-empty keys joined by "."']]],
		["a number group path", count({ groupBy: { region: 5 } }), [["groupBy.region", "must be a property path (a string)"]]],
		[
			"usage.quantity as a group",
			count({ groupBy: { q: "usage.quantity" } }),
			[["groupBy.q", "usage.quantity can only be a valueProperty"]],
		],
		["a string filter", count({ filter: "plan=pro" }), [["filter", "must be an object of property paths to values"]]],
		["11 filter keys", count({ filter: keys(11, (i) => i) }), [["filter", "must have at most 10 keys"]]],
		[
			"a bad filter path",
			count({ filter: { "plan[0]": "pro" } }),
			[["filter.plan[0]", "may not use [, ] or *: array indexes and wildcards are not supported"]],
		],
		[
			"a filter on usage.quantity",
			count({ filter: { "usage.quantity": 1 } }),
			[["filter.usage.quantity", "usage.quantity can only be a valueProperty"]],
		],
		["an object filter value", count({ filter: { plan: { eq: "pro" } } }), [["filter.plan", `${VALUE}, or an array of them`]]],
		["a null filter value", count({ filter: { plan: null } }), [["filter.plan", `${VALUE}, or an array of them`]]],
		["a NaN filter value", count({ filter: { plan: NaN } }), [["filter.plan", `${VALUE}, or an array of them`]]],
		["a 257-character filter string", count({ filter: { plan: chars(257) } }), [["filter.plan", `${VALUE}, or an array of them`]]],
		["an empty filter array", count({ filter: { plan: [] } }), [["filter.plan", "must be an array of 1-100 values"]]],
		[
			"101 filter values",
			count({ filter: { plan: Array.from({ length: 101 }, (_, i) => i) } }),
			[["filter.plan", "must be an array of 1-100 values"]],
		],
		["a null among filter values", count({ filter: { plan: ["pro", null] } }), [["filter.plan[1]", VALUE]]],
		["a nested array filter value", count({ filter: { plan: [["pro"]] } }), [["filter.plan[0]", VALUE]]],
		["a number description", count({ description: 5 }), [["description", "must be a string of at most 1000 characters"]]],
		[
			"a 1001-character description",
			count({ description: chars(1001) }),
			[["description", "must be a string of at most 1000 characters"]],
		],
	])("refuses %s", (_, body, expected) => {
		expect(validateMeter(body)).toEqual({ issues: expected.map(([path, message]) => ({ path, message })) });
	});

	it("reports every bad field at once, in field order", () => {
		const body = { slug: "Bad", eventType: "", aggregation: "COUNT", valueProperty: "x", groupBy: { r: "a..b" }, extra: 1 };
		expect(validateMeter(body).issues).toEqual([
			{ path: "extra", message: "unknown field" },
			{ path: "slug", message: SLUG_RULE },
			{ path: "eventType", message: "must be a string of 1-200 characters" },
			{ path: "valueProperty", message: "must be absent for COUNT, which counts events" },
			{ path: "groupBy.r", message: 'must be non-empty keys joined by "."' },
		]);
	});
});
