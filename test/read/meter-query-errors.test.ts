// GET /v1/meters/:slug/query refusals: each bad parameter a 400 naming it (window size, zone,
// groups, filters, unknown and repeated parameters, the range, more than 10,000 windows), 404 for
// a slug no meter ever had, 401/403 without a read key, and each tenant's meters kept to itself.
import { describe, expect, it } from "vitest";
import { call, createTenant, freezeClockAt, useFrozenClock, type TestTenant } from "../helpers";
import { expectError } from "../security/helpers";
import { createMeter, ingestDirect, queryMeter, type WireEvent } from "./meter-helpers";

const NOW = Date.UTC(2100, 10, 20, 12);
useFrozenClock(() => freezeClockAt(NOW));

const TOKENS = {
	slug: "tokens",
	eventType: "llm_call",
	aggregation: "SUM",
	valueProperty: "tokens",
	groupBy: { model: "model", region: "geo.region" },
	filter: { plan: "pro" },
} as const;

async function withMeter(): Promise<TestTenant> {
	const tenant = await createTenant();
	await createMeter(tenant, { ...TOKENS, groupBy: { ...TOKENS.groupBy }, filter: { ...TOKENS.filter } });
	return tenant;
}

async function answerOf(path: string, key?: string): Promise<{ status: number; body: unknown }> {
	const response = await call(path, { key });
	return { status: response.status, body: await response.json() };
}

function invalid(path: string, message: string) {
	return { status: 400, body: { error: { code: "invalid_request", message: `${path}: ${message}`, details: [{ path, message }] } } };
}

const ISO = "must be an ISO 8601 date or date-time";
const ZONE = "must be an IANA time zone such as Europe/Berlin, or UTC";
const SIZES = "must be one of MINUTE, HOUR, DAY, MONTH";

describe("GET /v1/meters/:slug/query refusals", () => {
	it.each([
		["windowSize=WEEK", "windowSize", SIZES],
		["windowSize=day", "windowSize", SIZES],
		["windowSize=", "windowSize", SIZES],
		["windowSize=DAY&windowTimeZone=Mars/Olympus", "windowTimeZone", ZONE],
		["windowTimeZone=", "windowTimeZone", ZONE],
		["groupBy=plan", "groupBy", '"plan" is not a group of this meter (customerId, model, region)'],
		["groupBy=", "groupBy", '"" is not a group of this meter (customerId, model, region)'],
		["groupBy=model,model", "groupBy", "names a group more than once"],
		["groupBy=customerId,region,customerId", "groupBy", "names a group more than once"],
		["filter[plan]=pro", "filter[plan]", '"plan" is not a group of this meter'],
		["filter[customerId]=acme", "filter[customerId]", '"customerId" is not a group of this meter'],
		["filter[]=x", "filter[]", "unknown query parameter"],
		["tenant=someone-else", "tenant", "unknown query parameter"],
		["WindowSize=DAY", "WindowSize", "unknown query parameter"],
		["groupBy=model&groupBy=region", "groupBy", "given more than once"],
		["filter[model]=gpt&filter[model]=llama", "filter[model]", "given more than once"],
		["from=yesterday", "from", ISO],
		["to=2100-02-30", "to", ISO],
		["from=2100-11-10&to=2100-11-10", "to", "must be after from"],
		["from=2100-11-10T00:00:01Z&to=2100-11-10", "to", "must be after from"],
		// Meter rows are per minute: a range cutting a minute cannot be answered exactly.
		["from=2100-11-10T00:00:30Z&to=2100-11-11", "from", "must be a whole minute"],
		["from=2100-11-10&to=2100-11-10T23:59:59.999Z", "to", "must be a whole minute"],
		["customerId=", "customerId", "must be 1-256 characters"],
		[`customerId=${"c".repeat(257)}`, "customerId", "must be 1-256 characters"],
	])("answers 400 for %s, naming %s", async (query, field, message) => {
		const tenant = await withMeter();
		expect(await answerOf(`/v1/meters/tokens/query?${query}`, tenant.readKey)).toEqual(invalid(field, message));
	});

	it.each([
		["MINUTE", "2100-11-01T00:00:00Z", "2100-11-07T22:40:00Z", "2100-11-07T22:41:00Z"],
		["HOUR", "2100-01-01T00:00:00Z", "2101-02-21T16:00:00Z", "2101-02-21T16:01:00Z"],
	])("answers 400 for more than 10,000 %s windows, and 200 for exactly 10,000", async (size, from, ok, tooFar) => {
		const tenant = await withMeter();
		const path = (to: string) => `/v1/meters/tokens/query?from=${from}&to=${to}&windowSize=${size}`;
		const fine = await answerOf(path(ok), tenant.readKey);
		expect(fine.status).toBe(200);
		expect(fine.body).toMatchObject({ from: new Date(from).toISOString(), to: new Date(ok).toISOString(), data: [] });
		expect(await answerOf(path(tooFar), tenant.readKey)).toEqual(
			invalid("windowSize", `the range holds more than 10000 ${size.toLowerCase()} windows; narrow it or use a larger window`),
		);
	});

	it("answers 404 for a slug no meter ever had, and 400 for one no meter can have", async () => {
		const tenant = await withMeter();
		expect(await answerOf("/v1/meters/nothing/query", tenant.readKey)).toEqual({
			status: 404,
			body: { error: { code: "not_found", message: "No meter nothing" } },
		});
		// The slug is looked up first: an unknown meter is a 404 whatever the parameters say.
		expect((await answerOf("/v1/meters/nothing/query?windowSize=WEEK", tenant.readKey)).status).toBe(404);
		await expectError(await call("/v1/meters/Tokens/query", { key: tenant.readKey }), 400, "invalid_request", [
			{ path: "slug", message: 'must be 1-64 lower-case letters and digits, words joined by single underscores ("api_tokens")' },
		]);
	});

	it("refuses a write key (403) and no key (401)", async () => {
		const tenant = await withMeter();
		await expectError(await call("/v1/meters/tokens/query", { key: tenant.writeKey }), 403, "forbidden");
		await expectError(await call("/v1/meters/tokens/query"), 401, "unauthorized");
		await expectError(await call("/v1/meters/tokens/query", { key: "ml_read_not-a-key" }), 401, "unauthorized");
	});
});

describe("tenant isolation", () => {
	const event = (id: string, tokens: number): WireEvent => ({
		id,
		event: "llm_call",
		timestamp: NOW - 3_600_000,
		customerId: "acme",
		properties: { model: "gpt", plan: "pro", tokens, geo: { region: "eu" } },
	});

	it("keeps each tenant's meters and readings to itself, with the same slug and the same event ids", async () => {
		const [owner, other, stranger] = await Promise.all([withMeter(), withMeter(), createTenant()]);
		expect(await ingestDirect(owner, [event("e1", 5), event("e2", 7)])).toBe(2);
		expect(await ingestDirect(other, [event("e1", 100)])).toBe(1);
		const range = { from: NOW - 86_400_000, to: NOW };
		const point = (value: string) => ({
			windowStart: new Date(range.from).toISOString(),
			windowEnd: new Date(range.to).toISOString(),
			value: Number(value),
			valueDecimal: value,
			customerId: null,
			groupBy: {},
		});
		expect((await queryMeter(owner, "tokens", range)).data).toEqual([point("12")]);
		expect((await queryMeter(other, "tokens", range)).data).toEqual([point("100")]);
		// A tenant without the meter cannot reach the others' by slug, nor with their customer id.
		expect(await answerOf("/v1/meters/tokens/query?customerId=acme", stranger.readKey)).toEqual({
			status: 404,
			body: { error: { code: "not_found", message: "No meter tokens" } },
		});
	});
});
