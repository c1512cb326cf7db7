// PUT and GET /v1/settings/cors: the read key, never the write key, sets a tenant's allowed origins, normalised and validated.
import { describe, expect, it } from "vitest";
import { call, createTenant } from "../helpers";
import { apiError, putOrigins } from "./helpers";

describe("PUT and GET /v1/settings/cors", () => {
	it("stores the normalised origins without duplicates and shows them", async () => {
		const tenant = await createTenant();
		const response = await putOrigins(tenant, {
			allowedOrigins: ["HTTPS://App.Example.com:443", "https://app.example.com", "http://localhost:5173", "http://[::1]:8080"],
		});
		const stored = ["https://app.example.com", "http://localhost:5173", "http://[::1]:8080"];
		expect({ status: response.status, body: await response.json() }).toEqual({
			status: 200,
			body: { allowedOrigins: stored, effectiveWithinMs: 60_000 },
		});
		const read = await call("/v1/settings/cors", { key: tenant.readKey });
		expect({ status: read.status, body: await read.json() }).toEqual({ status: 200, body: { allowedOrigins: stored } });
	});

	it("shows null, any origin, for a tenant that has set nothing", async () => {
		const tenant = await createTenant();
		const read = await call("/v1/settings/cors", { key: tenant.readKey });
		expect(await read.json()).toEqual({ allowedOrigins: null });
	});

	it("names each origin that is not scheme://host[:port]", async () => {
		const tenant = await createTenant();
		const bad = [
			"https://ok.example",
			"https://a.example/",
			"https://a.example/path",
			"ftp://a.example",
			"a.example",
			"*",
			"null",
			7,
			"https://u@a.example",
		];
		const response = await putOrigins(tenant, { allowedOrigins: bad });
		const message = "must be an origin: http(s)://host[:port], without a path";
		const details = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => ({ path: `allowedOrigins[${i}]`, message }));
		expect({ status: response.status, body: await response.json() }).toEqual({
			status: 400,
			body: apiError(
				"invalid_request",
				`Invalid allowed origins: ${details.map((d) => `${d.path} ${d.message}`).join("; ")}`,
				details,
			),
		});
		expect(await (await call("/v1/settings/cors", { key: tenant.readKey })).json()).toEqual({ allowedOrigins: null });
	});

	it.each([
		[
			"more than 50 origins",
			{ allowedOrigins: Array.from({ length: 51 }, (_, i) => `https://a${i}.example`) },
			"allowedOrigins",
			"must have at most 50 origins",
		],
		["a string", { allowedOrigins: "https://a.example" }, "allowedOrigins", "must be an array of origins, or null for any origin"],
		["no allowedOrigins", {}, "allowedOrigins", "must be an array of origins, or null for any origin"],
		["an unknown field", { allowedOrigins: [], origins: [] }, "origins", "unknown field"],
		["an array body", [], "body", "must be a JSON object"],
	])("answers 400 for %s", async (_name, body, path, message) => {
		const tenant = await createTenant();
		const response = await putOrigins(tenant, body);
		expect({ status: response.status, body: await response.json() }).toEqual({
			status: 400,
			body: apiError("invalid_request", `${path}: ${message}`, [{ path, message }]),
		});
	});

	it("refuses the write key, which ships inside web pages", async () => {
		const tenant = await createTenant();
		const put = await putOrigins(tenant, { allowedOrigins: null }, tenant.writeKey);
		const get = await call("/v1/settings/cors", { key: tenant.writeKey });
		expect([put.status, await put.json(), get.status]).toEqual([403, apiError("forbidden", "A write key cannot use this route"), 403]);
	});

	it("answers 401 without a key", async () => {
		const response = await call("/v1/settings/cors", { method: "PUT", body: JSON.stringify({ allowedOrigins: null }) });
		expect(response.status).toBe(401);
	});
});
