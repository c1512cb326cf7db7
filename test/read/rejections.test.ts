// GET /v1/rejections: newest first, cursor paging that holds while new rejections arrive, each
// tenant its own, read keys only, and a 400 naming each bad query parameter.
import { afterEach, describe, expect, it, vi } from "vitest";
import { ADMIN_TOKEN, call, createTenant } from "../helpers";
import { badPostHog, basicAuth, posthogBatch, rejectionsPage, send } from "../ingest/helpers";
import { expectError } from "../security/helpers";

afterEach(() => {
	vi.useRealTimers();
	vi.restoreAllMocks();
});

describe("GET /v1/rejections", () => {
	it("pages newest first; a cursor is stable while new rejections arrive, and null after the last page", async () => {
		const tenant = await createTenant();
		expect(
			(
				await send(
					posthogBatch(
						tenant,
						Array.from({ length: 7 }, (_, i) => badPostHog(i)),
					),
				)
			).status,
		).toBe(400);
		const places = (page: { items: { place: string }[] }) => page.items.map((item) => item.place);

		const first = await rejectionsPage(tenant, "limit=3");
		expect(places(first)).toEqual(["batch[6]", "batch[5]", "batch[4]"]);
		expect(first.nextCursor).toBe(first.items[2]!.id);
		expect((await send(posthogBatch(tenant, [badPostHog(100)]))).status).toBe(400);

		const second = await rejectionsPage(tenant, `limit=3&cursor=${first.nextCursor}`);
		expect(places(second)).toEqual(["batch[3]", "batch[2]", "batch[1]"]);
		const last = await rejectionsPage(tenant, `cursor=${second.nextCursor}&limit=3`);
		expect({ places: places(last), nextCursor: last.nextCursor }).toEqual({ places: ["batch[0]"], nextCursor: null });

		const fresh = await rejectionsPage(tenant, "limit=1");
		expect(fresh.items.map((item) => item.eventId)).toEqual(["bad-100"]);
		expect(Number(fresh.items[0]!.id)).toBeGreaterThan(Number(first.items[0]!.id));
	});

	it("answers nextCursor null when a page ends exactly at the last rejection, and an empty list for none", async () => {
		const tenant = await createTenant();
		expect(await rejectionsPage(tenant)).toEqual({ items: [], nextCursor: null });
		expect((await send(posthogBatch(tenant, [badPostHog(0), badPostHog(1), badPostHog(2)]))).status).toBe(400);
		const page = await rejectionsPage(tenant, "limit=3");
		expect({ count: page.items.length, nextCursor: page.nextCursor }).toEqual({ count: 3, nextCursor: null });
		expect((await rejectionsPage(tenant, "limit=100")).items).toHaveLength(3);
	});

	it("shows a tenant only its own rejections", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		expect((await send(posthogBatch(a, [badPostHog(0)]))).status).toBe(400);
		const own = await rejectionsPage(a);
		expect(own.items.map((item) => item.eventId)).toEqual(["bad-0"]);
		expect(await rejectionsPage(b)).toEqual({ items: [], nextCursor: null });
		// A cursor names a position, not a tenant: b's page after a's row is still b's, and empty.
		expect(await rejectionsPage(b, `cursor=${Number(own.items[0]!.id) + 1}`)).toEqual({ items: [], nextCursor: null });
	});

	it("answers a read key 200, a write key 403, no key 401 and the admin token 401", async () => {
		const tenant = await createTenant();
		expect((await call("/v1/rejections", { key: tenant.readKey })).status).toBe(200);
		await expectError(await call("/v1/rejections", { key: tenant.writeKey }), 403, "forbidden");
		await expectError(await call("/v1/rejections"), 401, "unauthorized");
		await expectError(await call("/v1/rejections", { key: ADMIN_TOKEN }), 401, "unauthorized");
		await expectError(await call("/v1/rejections", { headers: { authorization: basicAuth(tenant.readKey) } }), 401, "unauthorized");
	});

	it.each<[string, string, string]>([
		["an unknown parameter", "since=2026-01-01", "since"],
		["a tenant", "tenant=acme", "tenant"],
	])("answers 400 for %s in the query", async (_, query, path) => {
		const tenant = await createTenant();
		await expectError(await call(`/v1/rejections?${query}`, { key: tenant.readKey }), 400, "invalid_request", [
			{ path, message: "unknown query parameter" },
		]);
	});

	it.each<[string, string]>([
		["limit=0", "limit"],
		["limit=101", "limit"],
		["limit=abc", "limit"],
		["limit=1e2", "limit"],
		["limit=", "limit"],
		["limit=-1", "limit"],
		["cursor=abc", "cursor"],
		["cursor=0", "cursor"],
		["cursor=-5", "cursor"],
		["cursor=9999999999999999", "cursor"],
	])("answers 400 for %s", async (query, path) => {
		const tenant = await createTenant();
		const message = path === "limit" ? "must be an integer 1-100" : "must be a cursor from a previous page";
		await expectError(await call(`/v1/rejections?${query}`, { key: tenant.readKey }), 400, "invalid_request", [{ path, message }]);
	});

	it.each(["limit=1&limit=2", "cursor=5&cursor=5"])("answers 400 for the repeated parameter in %s", async (query) => {
		const tenant = await createTenant();
		const path = query.split("=")[0]!;
		await expectError(await call(`/v1/rejections?${query}`, { key: tenant.readKey }), 400, "invalid_request", [
			{ path, message: "given more than once" },
		]);
	});
});
