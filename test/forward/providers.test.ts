// Each provider's batch body and headers, exactly, and the webhook's signature checked as a receiver would.
import { describe, expect, it } from "vitest";
import type { Destination } from "../../src/forward/destinations";
import { providerRequest } from "../../src/forward/providers";
import type { QueuedEvent } from "../../src/event/model";

const NOW = Date.UTC(2026, 10, 20, 12, 0, 5);
const EVENTS: QueuedEvent[] = [
	{
		id: "ev-1",
		event: "signup",
		timestamp: Date.UTC(2026, 10, 20, 12),
		userId: "u-1",
		sessionId: "s-1",
		customerId: "acme",
		properties: { plan: "pro" },
		usage: { sku: "api", unit: "call", micros: 1_500_000 },
	},
	{ id: "ev-2", event: "page", timestamp: Date.UTC(2026, 10, 20, 12, 0, 1), sessionId: "s-2", route: "/a/:id", country: "DE" },
];

function destination(kind: Destination["kind"], config: Destination["config"], secret: Record<string, string>): Destination {
	return { tenant: "t", id: "dst_0123456789abcdef", kind, config, secret };
}

describe("provider payloads", () => {
	it("sends PostHog /batch/ with the project key, uuid = event id and a distinct_id", async () => {
		const request = await providerRequest(
			destination("posthog", { host: "https://eu.i.posthog.com" }, { apiKey: "phc_key" }),
			EVENTS,
			NOW,
		);
		expect(request.url).toBe("https://eu.i.posthog.com/batch/");
		expect(request.headers).toEqual({ "content-type": "application/json" });
		expect(JSON.parse(request.body)).toEqual({
			api_key: "phc_key",
			batch: [
				{
					event: "signup",
					uuid: "ev-1",
					distinct_id: "u-1",
					timestamp: "2026-11-20T12:00:00.000Z",
					properties: {
						plan: "pro",
						meterline_customer_id: "acme",
						meterline_usage_sku: "api",
						meterline_usage_unit: "call",
						meterline_usage_quantity: 1.5,
						$session_id: "s-1",
					},
				},
				{
					event: "page",
					uuid: "ev-2",
					distinct_id: "s-2",
					timestamp: "2026-11-20T12:00:01.000Z",
					properties: { meterline_route: "/a/:id", meterline_country: "DE", $session_id: "s-2" },
				},
			],
		});
	});

	it("sends Segment /v1/batch with Basic auth, messageId = event id, anonymousId without a user", async () => {
		const request = await providerRequest(destination("segment", { host: "https://api.segment.io" }, { writeKey: "wk" }), EVENTS, NOW);
		expect(request.url).toBe("https://api.segment.io/v1/batch");
		expect(request.headers).toEqual({ "content-type": "application/json", authorization: `Basic ${btoa("wk:")}` });
		expect(JSON.parse(request.body)).toEqual({
			batch: [
				{
					type: "track",
					event: "signup",
					messageId: "ev-1",
					userId: "u-1",
					timestamp: "2026-11-20T12:00:00.000Z",
					properties: {
						plan: "pro",
						meterline_customer_id: "acme",
						meterline_usage_sku: "api",
						meterline_usage_unit: "call",
						meterline_usage_quantity: 1.5,
					},
				},
				{
					type: "track",
					event: "page",
					messageId: "ev-2",
					anonymousId: "s-2",
					timestamp: "2026-11-20T12:00:01.000Z",
					properties: { meterline_route: "/a/:id", meterline_country: "DE" },
				},
			],
			sentAt: "2026-11-20T12:00:05.000Z",
		});
	});

	it("sends Mixpanel /import?strict=1 with the token as Basic auth and $insert_id = event id", async () => {
		const request = await providerRequest(
			destination("mixpanel", { host: "https://api-eu.mixpanel.com" }, { token: "tok" }),
			EVENTS,
			NOW,
		);
		expect(request.url).toBe("https://api-eu.mixpanel.com/import?strict=1");
		expect(request.headers).toEqual({ "content-type": "application/json", authorization: `Basic ${btoa("tok:")}` });
		expect(JSON.parse(request.body)).toEqual([
			{
				event: "signup",
				properties: {
					plan: "pro",
					meterline_customer_id: "acme",
					meterline_usage_sku: "api",
					meterline_usage_unit: "call",
					meterline_usage_quantity: 1.5,
					time: Date.UTC(2026, 10, 20, 12),
					distinct_id: "u-1",
					$insert_id: "ev-1",
				},
			},
			{
				event: "page",
				properties: {
					meterline_route: "/a/:id",
					meterline_country: "DE",
					time: Date.UTC(2026, 10, 20, 12, 0, 1),
					distinct_id: "s-2",
					$insert_id: "ev-2",
				},
			},
		]);
	});

	it("sends Amplitude /batch with the API key and insert_id = event id", async () => {
		const request = await providerRequest(
			destination("amplitude", { host: "https://api2.amplitude.com" }, { apiKey: "amp" }),
			EVENTS,
			NOW,
		);
		expect(request.url).toBe("https://api2.amplitude.com/batch");
		expect(request.headers).toEqual({ "content-type": "application/json" });
		expect(JSON.parse(request.body)).toEqual({
			api_key: "amp",
			events: [
				{
					event_type: "signup",
					insert_id: "ev-1",
					user_id: "u-1",
					device_id: "s-1",
					time: Date.UTC(2026, 10, 20, 12),
					event_properties: {
						plan: "pro",
						meterline_customer_id: "acme",
						meterline_usage_sku: "api",
						meterline_usage_unit: "call",
						meterline_usage_quantity: 1.5,
					},
				},
				{
					event_type: "page",
					insert_id: "ev-2",
					device_id: "s-2",
					time: Date.UTC(2026, 10, 20, 12, 0, 1),
					event_properties: { meterline_route: "/a/:id", meterline_country: "DE" },
				},
			],
		});
	});

	it("signs a webhook with HMAC-SHA-256 over t.body, which a receiver verifies with the secret", async () => {
		const secret = "whsec_0123456789abcdef";
		const d = destination("webhook", { url: "https://hooks.example.com/in", signatureHeader: "x-sig" }, { signingSecret: secret });
		const request = await providerRequest(d, EVENTS, NOW);
		expect(request.url).toBe("https://hooks.example.com/in");
		expect(JSON.parse(request.body)).toEqual({ v: 1, destination: d.id, events: EVENTS });
		const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(request.headers["x-sig"]!);
		expect(match?.[1]).toBe(String(NOW / 1000));
		const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
			"verify",
		]);
		const signature = Uint8Array.from(match![2]!.match(/../g)!, (h) => parseInt(h, 16));
		expect(await crypto.subtle.verify("HMAC", key, signature, new TextEncoder().encode(`${match![1]}.${request.body}`))).toBe(true);
		expect(await crypto.subtle.verify("HMAC", key, signature, new TextEncoder().encode(`${match![1]}.${request.body} `))).toBe(false);
	});
});
