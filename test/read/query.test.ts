// The report query shared by /v1/usage and /v1/stats: a bad from, to, granularity or parameter
// answers 400 naming the field; reports need a read key.
import { describe, expect, it } from "vitest";
import { call, createTenant, freezeClockAt, useFrozenClock } from "../helpers";

// Frozen with the minute ranges asked for (from 1 March 2026) within the 7 days minute granularity covers.
useFrozenClock(() => freezeClockAt(Date.UTC(2026, 2, 8)));

async function errorOf(path: string, key?: string): Promise<{ status: number; body: unknown }> {
	const response = await call(path, { key });
	return { status: response.status, body: await response.json() };
}

function invalid(path: string, message: string) {
	return { status: 400, body: { error: { code: "invalid_request", message: `${path}: ${message}`, details: [{ path, message }] } } };
}

const ISO = "must be an ISO 8601 date or date-time";

describe.each([
	["/v1/usage", "hour, day, month", "minute"],
	["/v1/stats", "minute, hour, day", "month"],
])("%s query", (route, allowed, otherReportsGranularity) => {
	it.each([
		["from=yesterday", "from", ISO],
		["from=2026-03-10T10:00", "from", ISO],
		["from=1773136800000", "from", ISO],
		["to=2026-13-01", "to", ISO],
		["to=2026-03-10T25:00Z", "to", ISO],
		["from=2026-03-10&to=2026-03-10", "to", "must be after from"],
		["from=2026-03-11&to=2026-03-10", "to", "must be after from"],
		["granularity=week", "granularity", `must be one of ${allowed}`],
		[`granularity=${otherReportsGranularity}`, "granularity", `must be one of ${allowed}`],
		["granularity=", "granularity", `must be one of ${allowed}`],
		["tenant=someone-else", "tenant", "unknown query parameter"],
		["from=2026-03-10&From=2026-03-11", "From", "unknown query parameter"],
	])("answers 400 for %s, naming %s", async (query, field, message) => {
		const tenant = await createTenant();
		expect(await errorOf(`${route}?${query}`, tenant.readKey)).toEqual(invalid(field, message));
	});

	it("answers 400 for a day that does not exist", async () => {
		// Date.parse would roll 2026-02-30 over to 2026-03-02; a report range must name a real day.
		const tenant = await createTenant();
		expect(await errorOf(`${route}?from=2026-02-30&to=2026-03-31`, tenant.readKey)).toEqual(invalid("from", ISO));
	});

	it("answers 400 for a range of more than 10000 buckets", async () => {
		const tenant = await createTenant();
		const finest = allowed.split(", ")[0]!;
		// 10000 buckets exactly is allowed; one more bucket's worth of range is not.
		const span =
			finest === "minute"
				? ["2026-03-01T00:00Z", "2026-03-07T22:40Z", "2026-03-07T22:41Z"]
				: ["2026-01-01T00:00Z", "2027-02-21T16:00Z", "2027-02-21T17:00Z"];
		const ok = await call(`${route}?granularity=${finest}&from=${span[0]}&to=${span[1]}`, { key: tenant.readKey });
		expect(ok.status).toBe(200);
		expect(await errorOf(`${route}?granularity=${finest}&from=${span[0]}&to=${span[2]}`, tenant.readKey)).toEqual(
			invalid("granularity", `the range holds more than 10000 ${finest} buckets; narrow it or use a coarser granularity`),
		);
	});

	it("needs a read key", async () => {
		const tenant = await createTenant();
		expect(await errorOf(route)).toEqual({ status: 401, body: { error: { code: "unauthorized", message: "Missing bearer key" } } });
		expect(await errorOf(route, tenant.writeKey)).toEqual({
			status: 403,
			body: { error: { code: "forbidden", message: "A write key cannot use this route" } },
		});
	});
});
