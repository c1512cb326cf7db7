// /v1/destinations: validation naming the field, secrets encrypted at rest and never returned.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { decryptSecret } from "../../src/forward/crypto";
import { call, createTenant, getJson, postJson } from "../helpers";
import { createDestination } from "./helpers";

describe("/v1/destinations", () => {
	it("creates a destination, stores its secret encrypted and never returns it", async () => {
		const tenant = await createTenant();
		const created = await createDestination(tenant.readKey, {
			kind: "posthog",
			host: "https://eu.i.posthog.com",
			apiKey: "phc_secret_value",
		});
		expect(created).toMatchObject({ kind: "posthog", host: "https://eu.i.posthog.com", secretFields: ["apiKey"], test: false });
		const listed = await getJson<{ destinations: unknown[] }>("/v1/destinations", tenant.readKey);
		expect(listed.destinations).toHaveLength(1);
		expect(JSON.stringify(listed)).not.toContain("phc_secret_value");
		expect(JSON.stringify(created)).not.toContain("phc_secret_value");
		const row = await env.DB.prepare("SELECT * FROM destinations WHERE id = ?1")
			.bind(created.id)
			.first<{ secret: string; config: string }>();
		expect(row!.secret).not.toContain("phc_secret_value");
		expect(row!.config).not.toContain("phc_secret_value");
		expect(await decryptSecret("test-destinations-key", `${tenant.id}/${created.id}`, row!.secret)).toBe(
			'{"apiKey":"phc_secret_value"}',
		);
		await expect(decryptSecret("another-key", `${tenant.id}/${created.id}`, row!.secret)).rejects.toThrow();
		await expect(decryptSecret("test-destinations-key", `other/${created.id}`, row!.secret)).rejects.toThrow();
	});

	it.each([
		[{ kind: "kafka" }, "kind"],
		[{ kind: "posthog", host: "http://eu.i.posthog.com", apiKey: "k" }, "host"],
		[{ kind: "posthog", host: "https://eu.i.posthog.com/path", apiKey: "k" }, "host"],
		[{ kind: "posthog", host: "https://10.0.0.1", apiKey: "k" }, "host"],
		[{ kind: "posthog", apiKey: "" }, "apiKey"],
		[{ kind: "segment", writeKey: "has space" }, "writeKey"],
		[{ kind: "mixpanel", token: "t", extra: 1 }, "extra"],
		[{ kind: "webhook", url: "https://user:pw@hooks.example.com", signingSecret: "0123456789abcdef" }, "url"],
		[{ kind: "webhook", url: "ftp://hooks.example.com", signingSecret: "0123456789abcdef" }, "url"],
		[{ kind: "webhook", url: "https://hooks.example.com", signingSecret: "short" }, "signingSecret"],
		[
			{ kind: "webhook", url: "https://hooks.example.com", signingSecret: "0123456789abcdef", signatureHeader: "bad header" },
			"signatureHeader",
		],
		[
			{ kind: "webhook", url: "https://hooks.example.com", signingSecret: "0123456789abcdef", signatureHeader: "Content-Type" },
			"signatureHeader",
		],
	])("refuses %j with a 400 naming %s", async (body, field) => {
		const tenant = await createTenant();
		const response = await postJson("/v1/destinations", body, tenant.readKey);
		expect(response.status).toBe(400);
		const error = await response.json<{ error: { details: { path: string }[] } }>();
		expect(error.error.details[0]!.path).toBe(field);
	});

	it("accepts http only for localhost and 127.0.0.1", async () => {
		const tenant = await createTenant();
		const created = await createDestination(tenant.readKey, {
			kind: "webhook",
			url: "http://127.0.0.1:9/hook",
			signingSecret: "0123456789abcdef",
		});
		expect(created).toMatchObject({ url: "http://127.0.0.1:9/hook", signatureHeader: "x-meterline-signature" });
	});

	it("needs a read key, and deletes a destination with its dead letters", async () => {
		const tenant = await createTenant();
		expect((await postJson("/v1/destinations", { kind: "amplitude", apiKey: "a" }, tenant.writeKey)).status).toBe(403);
		const created = await createDestination(tenant.readKey, { kind: "amplitude", apiKey: "a" });
		const other = await createTenant();
		expect((await call(`/v1/destinations/${created.id}`, { method: "DELETE", key: other.readKey })).status).toBe(404);
		expect((await call(`/v1/destinations/${created.id}`, { method: "DELETE", key: tenant.readKey })).status).toBe(204);
		expect((await getJson<{ destinations: unknown[] }>("/v1/destinations", tenant.readKey)).destinations).toEqual([]);
	});
});
