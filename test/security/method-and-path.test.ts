// Method and path abuse across every route: never a 5xx for any route, method and key; exact
// answers for wrong methods, odd paths, broken percent-encoding and bad query parameters; nothing
// enqueued for a path that only resembles /v1/events.
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call, createTenant, ingest, RecordingQueue, type TestTenant } from "../helpers";
import { ev, expectError, type Detail } from "./helpers";

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
			"/v1/meters",
			"/v1/meters/m",
			"/v1/meters/%ZZ",
			`/v1/meters/${"m".repeat(10_000)}`,
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
		["PUT", "/v1/meters", "read", 405, "method_not_allowed", "POST, GET"],
		["POST", "/v1/meters/m", "read", 405, "method_not_allowed", "GET, DELETE"],
		["DELETE", "/v1/meters/%ZZ", "read", 400, "invalid_request", [{ path: "slug", message: "is not valid percent-encoding" }]],
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
