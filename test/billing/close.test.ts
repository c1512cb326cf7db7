// Closing a billing month: from the instant it has ended (409 before), with the read key or by the
// admin for any tenant, listed by GET /v1/periods, idempotent, and 400 naming a bad period.
import { describe, expect, it } from "vitest";
import { d1Rows } from "../aggregator/helpers";
import { advanceClock, call, createTenant, freezeClockAt, getJson, uniqueTenantId, useFrozenClock } from "../helpers";
import { iso } from "../read/helpers";
import { adminClose, bodyOf, closeVia, DECEMBER } from "./helpers";

const MINUTE = 60_000;
const HOUR = 3_600_000;

// Each test an hour after the previous one, from 3 December 10:00: November is over, and all of it
// lies within the 35 days the edge accepts. Time never runs backwards within the file.
let tests = 0;
const clock = useFrozenClock(() => freezeClockAt(Date.UTC(2100, 11, 3, 10) + tests++ * HOUR));

describe("POST /v1/periods/:period/close", () => {
	// First in the file: it freezes the clock earlier than the file's own schedule, before any event is sent.
	it("closes a month from the instant it has ended, and not a millisecond before", async () => {
		const tenant = await createTenant();
		freezeClockAt(DECEMBER - 1);

		expect(await bodyOf(await closeVia("2100-11", tenant.readKey))).toEqual({
			status: 409,
			body: {
				error: {
					code: "conflict",
					message: "2100-11 has not ended yet; a month can be closed once it is over",
					details: [{ path: "period", message: "has not ended" }],
				},
			},
		});
		advanceClock(1);
		expect(await bodyOf(await closeVia("2100-11", tenant.readKey))).toEqual({
			status: 200,
			body: { tenant: tenant.id, period: "2100-11", closedAt: iso(DECEMBER), flushed: 0, invoices: { stored: 0, complete: true } },
		});
	});

	it("closes an ended month with the read key, lists it, and answers the first closedAt when it is closed again", async () => {
		const tenant = await createTenant();
		const first = clock.start;

		expect(await bodyOf(await closeVia("2100-11", tenant.readKey))).toEqual({
			status: 200,
			body: { tenant: tenant.id, period: "2100-11", closedAt: iso(first), flushed: 0, invoices: { stored: 0, complete: true } },
		});
		const later = advanceClock(5 * MINUTE);
		expect(await bodyOf(await closeVia("2100-10", tenant.readKey))).toEqual({
			status: 200,
			body: { tenant: tenant.id, period: "2100-10", closedAt: iso(later), flushed: 0, invoices: { stored: 0, complete: true } },
		});
		advanceClock(5 * MINUTE);
		expect(await bodyOf(await closeVia("2100-11", tenant.readKey))).toEqual({
			status: 200,
			body: { tenant: tenant.id, period: "2100-11", closedAt: iso(first), flushed: 0, invoices: { stored: 0, complete: true } },
		});

		expect(await getJson("/v1/periods", tenant.readKey)).toEqual({
			tenant: tenant.id,
			closed: [
				{ period: "2100-10", closedAt: iso(later) },
				{ period: "2100-11", closedAt: iso(first) },
			],
		});
	});

	it.each(["2100-12", "2101-01"])("answers 409 naming period for %s, a month not yet over, and closes nothing", async (period) => {
		const tenant = await createTenant();

		expect(await bodyOf(await closeVia(period, tenant.readKey))).toEqual({
			status: 409,
			body: {
				error: {
					code: "conflict",
					message: `${period} has not ended yet; a month can be closed once it is over`,
					details: [{ path: "period", message: "has not ended" }],
				},
			},
		});
		expect(await getJson("/v1/periods", tenant.readKey)).toEqual({ tenant: tenant.id, closed: [] });
	});

	it.each(["2026-13", "2026-1", "nov", "2100-00", "2100-11-01"])("answers 400 naming period for %j", async (period) => {
		const tenant = await createTenant();

		expect(await bodyOf(await closeVia(period, tenant.readKey))).toEqual({
			status: 400,
			body: {
				error: {
					code: "invalid_request",
					message: "period: must be a month, YYYY-MM",
					details: [{ path: "period", message: "must be a month, YYYY-MM" }],
				},
			},
		});
		expect(await getJson("/v1/periods", tenant.readKey)).toEqual({ tenant: tenant.id, closed: [] });
	});

	it("answers 403 for a write key and 401 without a key, and closes nothing", async () => {
		const tenant = await createTenant();

		expect(await bodyOf(await closeVia("2100-11", tenant.writeKey))).toEqual({
			status: 403,
			body: { error: { code: "forbidden", message: "A write key cannot use this route" } },
		});
		expect(await bodyOf(await closeVia("2100-11"))).toEqual({
			status: 401,
			body: { error: { code: "unauthorized", message: "Missing bearer key" } },
		});
		expect(await bodyOf(await call("/v1/periods", { key: tenant.writeKey }))).toEqual({
			status: 403,
			body: { error: { code: "forbidden", message: "A write key cannot use this route" } },
		});
		expect(await getJson("/v1/periods", tenant.readKey)).toEqual({ tenant: tenant.id, closed: [] });
	});

	it("lets the admin close any tenant's month, and answers 404 for an unknown tenant", async () => {
		const tenant = await createTenant();
		const unknown = uniqueTenantId("nobody");

		expect(await bodyOf(await adminClose(tenant.id, "2100-11"))).toEqual({
			status: 200,
			body: { tenant: tenant.id, period: "2100-11", closedAt: iso(clock.start), flushed: 0, invoices: { stored: 0, complete: true } },
		});
		expect(await getJson("/v1/periods", tenant.readKey)).toEqual({
			tenant: tenant.id,
			closed: [{ period: "2100-11", closedAt: iso(clock.start) }],
		});

		expect(await bodyOf(await adminClose(unknown, "2100-11"))).toEqual({
			status: 404,
			body: { error: { code: "not_found", message: `No tenant ${unknown}` } },
		});
		expect(await d1Rows("SELECT period FROM closed_periods WHERE tenant = ?1", unknown)).toEqual([]);
		// The admin route takes the admin token only, never a tenant's key.
		expect(await bodyOf(await adminClose(tenant.id, "2100-10", tenant.readKey))).toEqual({
			status: 401,
			body: { error: { code: "unauthorized", message: "Admin token required" } },
		});
		expect(await bodyOf(await adminClose(tenant.id, "2100-12"))).toEqual({
			status: 409,
			body: {
				error: {
					code: "conflict",
					message: "2100-12 has not ended yet; a month can be closed once it is over",
					details: [{ path: "period", message: "has not ended" }],
				},
			},
		});
		expect(await bodyOf(await adminClose(tenant.id, "nov"))).toEqual({
			status: 400,
			body: {
				error: {
					code: "invalid_request",
					message: "period: must be a month, YYYY-MM",
					details: [{ path: "period", message: "must be a month, YYYY-MM" }],
				},
			},
		});
		expect(await getJson("/v1/periods", tenant.readKey)).toEqual({
			tenant: tenant.id,
			closed: [{ period: "2100-11", closedAt: iso(clock.start) }],
		});
	});
});
