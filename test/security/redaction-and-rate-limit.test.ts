// Redaction of REDACT_KEYS property values before anything is enqueued, and the per-tenant ingest
// rate limit (TENANT_RATE_LIMIT: 1000 requests per 60 s).
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, createTenant, eventsRequest, fetchWith, ingest, RecordingQueue } from "../helpers";
import { expectError, issueKey } from "./helpers";

const R = "[redacted]";

/** Sends one request with a recording queue; returns the status and the properties of every enqueued event. */
async function enqueuedProperties(request: Request, overrides: Partial<Env> = {}): Promise<{ status: number; properties: unknown[] }> {
	const queue = new RecordingQueue();
	const ctx = createExecutionContext();
	const response = await fetchWith(request, queue, ctx, overrides);
	await waitOnExecutionContext(ctx);
	return { status: response.status, properties: queue.messages.flatMap((message) => message.events.map((event) => event.properties)) };
}

describe("redaction", () => {
	it("redacts matching keys at any depth, inside arrays too, whatever their value", async () => {
		const tenant = await createTenant();
		const properties = {
			password: "hunter2",
			profile: { name: "Ann", secret: { question: "pet", answer: "Rex" }, prefs: { theme: "dark", apiKey: "k-123" } },
			cards: [{ cardNumber: "4111111111111111", last4: "1111" }, [[{ ssn: 123456789, country: "US" }]]],
			a: { b: { c: { d: { e: { f: { g: { token: "t", keep: 1 } } } } } } },
			headers: { authorization: "Bearer abc", accept: "application/json" },
			creditCard: null,
			list: ["password", "token"],
		};
		const result = await enqueuedProperties(eventsRequest(JSON.stringify({ event: "signup", properties }), tenant.writeKey));
		expect(result).toEqual({
			status: 202,
			properties: [
				{
					password: R,
					profile: { name: "Ann", secret: R, prefs: { theme: "dark", apiKey: R } },
					cards: [{ cardNumber: R, last4: "1111" }, [[{ ssn: R, country: "US" }]]],
					a: { b: { c: { d: { e: { f: { g: { token: R, keep: 1 } } } } } } },
					headers: { authorization: R, accept: "application/json" },
					creditCard: R,
					list: ["password", "token"],
				},
			],
		});
	});

	it("matches keys case-insensitively", async () => {
		const tenant = await createTenant();
		const properties = {
			PASSWORD: "a",
			Secret: "b",
			TOKEN: "c",
			Authorization: "d",
			APIKEY: "e",
			apikey: "f",
			CreditCard: "g",
			CARDNUMBER: "h",
			Ssn: "i",
			nested: [{ PassWord: "j", ApiKey: { deep: true } }],
		};
		const result = await enqueuedProperties(eventsRequest(JSON.stringify({ event: "a", properties }), tenant.writeKey));
		expect(result).toEqual({
			status: 202,
			properties: [
				{
					PASSWORD: R,
					Secret: R,
					TOKEN: R,
					Authorization: R,
					APIKEY: R,
					apikey: R,
					CreditCard: R,
					CARDNUMBER: R,
					Ssn: R,
					nested: [{ PassWord: R, ApiKey: R }],
				},
			],
		});
	});

	it("keeps keys that only contain, or resemble, a redacted key", async () => {
		const tenant = await createTenant();
		const properties = {
			passwordHint: "first pet",
			my_password: "x",
			tokens: 1250,
			secretary: "Bob",
			api_keys: "k",
			auth: "basic",
			ssn_last4: "6789",
			card: "visa",
			"password ": "trailing space",
			note: "my password is password",
		};
		const result = await enqueuedProperties(eventsRequest(JSON.stringify({ event: "a", properties }), tenant.writeKey));
		expect(result).toEqual({ status: 202, properties: [properties] });
	});

	it("redacts api_key by default, beside apiKey", async () => {
		const tenant = await createTenant();
		const properties = { api_key: "k1", APIKEY: "k2", nested: { Api_Key: "k3" } };
		const result = await enqueuedProperties(eventsRequest(JSON.stringify({ event: "a", properties }), tenant.writeKey));
		expect(result).toEqual({ status: 202, properties: [{ api_key: R, APIKEY: R, nested: { Api_Key: R } }] });
	});

	it("redacts every event of a batch, and with ?ack=durable", async () => {
		const tenant = await createTenant();
		const events = [
			{ event: "a", properties: { token: "1", keep: "x" } },
			{ event: "b" },
			{ event: "c", properties: { list: [{ secret: 2 }] } },
		];
		const request = eventsRequest(JSON.stringify({ events }), tenant.writeKey);
		const result = await enqueuedProperties(new Request(`${request.url}?ack=durable`, request));
		expect(result).toEqual({ status: 202, properties: [{ token: R, keep: "x" }, undefined, { list: [{ secret: R }] }] });
	});

	it("redacts the keys REDACT_KEYS names, and only those", async () => {
		const tenant = await createTenant();
		const body = JSON.stringify({ event: "a", properties: { Email: "a@b.c", phone: "555", password: "p", user: { EMAIL: "x" } } });
		expect(await enqueuedProperties(eventsRequest(body, tenant.writeKey), { REDACT_KEYS: " email , Phone " })).toEqual({
			status: 202,
			properties: [{ Email: R, phone: R, password: "p", user: { EMAIL: R } }],
		});
		expect(await enqueuedProperties(eventsRequest(body, tenant.writeKey), { REDACT_KEYS: "" })).toEqual({
			status: 202,
			properties: [{ Email: "a@b.c", phone: "555", password: "p", user: { EMAIL: "x" } }],
		});
		// Back to the configured list: the parsed set follows the variable, it is not stuck on the last one.
		expect(await enqueuedProperties(eventsRequest(body, tenant.writeKey))).toEqual({
			status: 202,
			properties: [{ Email: "a@b.c", phone: "555", password: R, user: { EMAIL: "x" } }],
		});
	});
});

describe("rate limit", () => {
	const LIMIT = 1000;
	const PERIOD_MS = 60_000;

	/**
	 * The local limiter counts in windows aligned to the wall-clock minute. Starting with at least
	 * 20 s of the window left keeps all 1001 requests in one window; this waits, it asserts nothing.
	 */
	async function startOfAWindow(): Promise<void> {
		const left = PERIOD_MS - (Date.now() % PERIOD_MS);
		if (left < 20_000) await new Promise((resolve) => setTimeout(resolve, left + 100));
	}

	function send(key: string, body = '{"event":"a"}'): Promise<Response> {
		return call("/v1/events", { method: "POST", key, body });
	}

	it("answers the 1001st request of a minute 429 with Retry-After 60, per tenant", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		const extraKey = await issueKey(a.id, "write");
		await startOfAWindow();

		const statuses = new Map<number, number>();
		for (let sent = 0; sent < LIMIT; sent += 100) {
			const responses = await Promise.all(Array.from({ length: 100 }, () => send(a.writeKey)));
			for (const response of responses) statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
		}
		expect(Object.fromEntries(statuses)).toEqual({ 202: LIMIT });

		const { response, queue } = await ingest(eventsRequest('{"event":"a"}', a.writeKey));
		expect(response.headers.get("retry-after")).toBe("60");
		await expectError(response, 429, "rate_limited");
		expect(queue.calls).toEqual([]);

		// The limit is the tenant's, whichever of its write keys is used, and it is checked before the body is read.
		await expectError(await send(extraKey.key), 429, "rate_limited");
		await expectError(await send(a.writeKey, "{"), 429, "rate_limited");

		// Another tenant is unaffected, and so are the limited tenant's reports.
		expect((await send(b.writeKey)).status).toBe(202);
		expect((await call("/v1/usage", { key: a.readKey })).status).toBe(200);
	});
});
