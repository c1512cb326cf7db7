// Each provider's documented batch API: the request one chunk of events becomes. The event id is
// each provider's idempotency key (PostHog uuid, Segment messageId, Mixpanel $insert_id, Amplitude
// insert_id), so a batch sent twice is counted once.
import type { QueuedEvent } from "../event/model.js";
import type { Destination, Kind } from "./destinations.js";

export interface ProviderRequest {
	url: string;
	headers: Record<string, string>;
	body: string;
}

/** Events per request, within each API's documented limits (Segment's 500 KB per batch bounds it lowest). */
export const CHUNK_EVENTS: Record<Kind, number> = { posthog: 1000, segment: 100, mixpanel: 2000, amplitude: 1000, webhook: 1000 };

/** The event's identity for providers that require one: the user, else the session, else the customer, else the event itself. */
export function distinctId(event: QueuedEvent): string {
	return event.userId || event.sessionId || event.customerId || event.id;
}

/** The event's properties, then what Meterline knows of it, prefixed so it never collides with them. */
export function forwardedProperties(event: QueuedEvent): Record<string, unknown> {
	const out: Record<string, unknown> = { ...event.properties };
	if (event.customerId !== undefined) out.meterline_customer_id = event.customerId;
	if (event.route !== undefined) out.meterline_route = event.route;
	if (event.country !== undefined) out.meterline_country = event.country;
	if (event.performance?.duration !== undefined) out.meterline_duration_ms = event.performance.duration;
	if (event.performance?.statusCode !== undefined) out.meterline_status_code = event.performance.statusCode;
	if (event.usage) {
		out.meterline_usage_sku = event.usage.sku;
		out.meterline_usage_unit = event.usage.unit;
		out.meterline_usage_quantity = event.usage.micros / 1_000_000;
	}
	return out;
}

const JSON_TYPE = "application/json";

function basic(user: string): string {
	return `Basic ${btoa(`${user}:`)}`;
}

/** PostHog's batch endpoint: POST {host}/batch/ with the project API key in the body. */
function posthog(d: Destination, events: QueuedEvent[]): ProviderRequest {
	return {
		url: `${d.config.host}/batch/`,
		headers: { "content-type": JSON_TYPE },
		body: JSON.stringify({
			api_key: d.secret.apiKey,
			batch: events.map((e) => ({
				event: e.event,
				uuid: e.id,
				distinct_id: distinctId(e),
				timestamp: new Date(e.timestamp).toISOString(),
				properties: { ...forwardedProperties(e), ...(e.sessionId !== undefined ? { $session_id: e.sessionId } : {}) },
			})),
		}),
	};
}

/** Segment's HTTP Tracking API batch: POST {host}/v1/batch, the write key as Basic auth user. */
function segment(d: Destination, events: QueuedEvent[], now: number): ProviderRequest {
	return {
		url: `${d.config.host}/v1/batch`,
		headers: { "content-type": JSON_TYPE, authorization: basic(d.secret.writeKey!) },
		body: JSON.stringify({
			batch: events.map((e) => ({
				type: "track",
				event: e.event,
				messageId: e.id,
				...(e.userId ? { userId: e.userId } : { anonymousId: distinctId(e) }),
				timestamp: new Date(e.timestamp).toISOString(),
				properties: forwardedProperties(e),
			})),
			sentAt: new Date(now).toISOString(),
		}),
	};
}

/** Mixpanel's Import API: POST {host}/import?strict=1, the project token as Basic auth user. */
function mixpanel(d: Destination, events: QueuedEvent[]): ProviderRequest {
	return {
		url: `${d.config.host}/import?strict=1`,
		headers: { "content-type": JSON_TYPE, authorization: basic(d.secret.token!) },
		body: JSON.stringify(
			events.map((e) => ({
				event: e.event,
				properties: { ...forwardedProperties(e), time: e.timestamp, distinct_id: distinctId(e), $insert_id: e.id },
			})),
		),
	};
}

/** Amplitude's Batch Event Upload API: POST {host}/batch with the API key in the body. */
function amplitude(d: Destination, events: QueuedEvent[]): ProviderRequest {
	return {
		url: `${d.config.host}/batch`,
		headers: { "content-type": JSON_TYPE },
		body: JSON.stringify({
			api_key: d.secret.apiKey,
			events: events.map((e) => ({
				event_type: e.event,
				insert_id: e.id,
				...(e.userId ? { user_id: e.userId } : {}),
				device_id: e.sessionId || e.customerId || e.userId || e.id,
				time: e.timestamp,
				event_properties: forwardedProperties(e),
			})),
		}),
	};
}

function hex(buffer: ArrayBuffer): string {
	return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** HMAC-SHA-256 of `${t}.${body}` under the signing secret, hex: the webhook signature's v1. */
export async function webhookSignature(secret: string, t: number, body: string): Promise<string> {
	const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
	return hex(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${t}.${body}`)));
}

/** A webhook: the events as Meterline holds them, signed `t=<unix s>,v1=<hex HMAC>` in the destination's header. */
async function webhook(d: Destination, events: QueuedEvent[], now: number): Promise<ProviderRequest> {
	const body = JSON.stringify({ v: 1, destination: d.id, events });
	const t = Math.floor(now / 1000);
	return {
		url: d.config.url!,
		headers: {
			"content-type": JSON_TYPE,
			[d.config.signatureHeader!]: `t=${t},v1=${await webhookSignature(d.secret.signingSecret!, t, body)}`,
		},
		body,
	};
}

/** The request that delivers `events` (one chunk) to `d`, as of `now`. */
export async function providerRequest(d: Destination, events: QueuedEvent[], now: number): Promise<ProviderRequest> {
	switch (d.kind) {
		case "posthog":
			return posthog(d, events);
		case "segment":
			return segment(d, events, now);
		case "mixpanel":
			return mixpanel(d, events);
		case "amplitude":
			return amplitude(d, events);
		case "webhook":
			return webhook(d, events, now);
	}
}
