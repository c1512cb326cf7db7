// PostHog's capture API (/batch/, /capture/, /e/, /i/v0/e/), so posthog-node and posthog-js work
// unchanged with only the host changed: JSON, gzip-js, and posthog-js's base64 form bodies (its
// sendBeacon transport) alike.
import { verifyKey } from "../http/auth.js";
import { enforceOrigin } from "../http/cors.js";
import { EVENT_LIMITS } from "../event/model.js";
import { isPlainObject } from "../shared/objects.js";
import { gunzipLimited, isGzip, parseJsonBytes, readMaybeGzip } from "../http/body.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { enforceRateLimit, redactionFor, requestCountry } from "./events.js";
import { acceptValid, asId, correctClockSkew, validateAt, withUsage, type RawEvent } from "./compat.js";

export const POSTHOG_PATHS = ["/batch", "/capture", "/e", "/i/v0/e"] as const;

/** Maps one PostHog event to a Meterline event (validated afterwards). */
export function fromPostHog(message: Record<string, unknown>, sentAt: unknown, receivedAt: number): RawEvent {
	const properties = isPlainObject(message.properties) ? { ...message.properties } : undefined;
	const distinctId = message.distinct_id ?? properties?.distinct_id ?? properties?.$distinct_id;
	if (properties) {
		// The project key travels in properties for posthog-js; it is a credential, never data.
		delete properties.token;
		delete properties.api_key;
	}
	const event: RawEvent = {
		id: asId(message.uuid),
		event: message.event,
		userId: asId(distinctId),
		customerId: asId(properties && posthogCustomer(properties)),
		timestamp: correctClockSkew(message.timestamp, sentAt, receivedAt),
	};
	for (const key of Object.keys(event)) if (event[key] === undefined) delete event[key];
	return withUsage(event, properties);
}

/** The $groups keys that name the customer, most specific first. */
const CUSTOMER_GROUPS = ["customer", "company", "organization", "account"] as const;

/**
 * The customer a PostHog event is billed to: `properties.customerId`; else from `$groups` (group
 * type → key, as posthog-js sends after `group()`), the first of CUSTOMER_GROUPS present, else its
 * only group. Read, not moved: the properties stay as PostHog would store them.
 */
function posthogCustomer(properties: Record<string, unknown>): unknown {
	if (properties.customerId !== undefined && properties.customerId !== null) return properties.customerId;
	const groups = properties.$groups;
	if (!isPlainObject(groups)) return undefined;
	for (const type of CUSTOMER_GROUPS) if (groups[type] !== undefined && groups[type] !== null) return groups[type];
	const keys = Object.values(groups).filter((key) => key !== undefined && key !== null);
	return keys.length === 1 ? keys[0] : undefined;
}

/** The events and project key of any body shape PostHog's clients send. */
function unpack(body: unknown): { messages: unknown[]; key: unknown; sentAt: unknown } {
	if (Array.isArray(body)) {
		const first = isPlainObject(body[0]) ? body[0] : {};
		const properties = isPlainObject(first.properties) ? first.properties : {};
		return { messages: body, key: first.api_key ?? properties.token, sentAt: undefined };
	}
	if (!isPlainObject(body)) throw invalidField("body", "must be a JSON object or array");
	if (Array.isArray(body.batch)) return { messages: body.batch, key: body.api_key ?? body.token, sentAt: body.sent_at };
	const properties = isPlainObject(body.properties) ? body.properties : {};
	return { messages: [body], key: body.api_key ?? body.token ?? properties.token, sentAt: body.sent_at };
}

/**
 * The body as JSON, whichever way the client encoded it: gzip when `?compression=gzip-js` (or
 * `gzip`, or Content-Encoding: gzip) says so or its first bytes do (posthog-js now sends gzip as
 * text/plain with no flag at all); `?compression=base64` is a form whose `data` is base64 of the
 * JSON's UTF-8; any other form body carries the JSON in `data`.
 */
async function readPostHogBody(request: Request, url: URL): Promise<unknown> {
	const compression = url.searchParams.get("compression");
	const max = EVENT_LIMITS.maxBodyBytes;
	// posthog-node halves its batch and resends on a 413, so oversize answers 413 here.
	let bytes = await readMaybeGzip(request, max, compression === "gzip-js" || compression === "gzip");
	if (isGzip(bytes)) bytes = await gunzipLimited(bytes, max);
	const form = /^application\/x-www-form-urlencoded\b/i.test(request.headers.get("content-type") ?? "");
	if (compression !== "base64" && !form) return parseJsonBytes(bytes);
	const data = new URLSearchParams(new TextDecoder().decode(bytes)).get("data");
	if (data === null) throw invalidField("data", "is missing from the form body");
	if (compression !== "base64") return parseJsonBytes(new TextEncoder().encode(data));
	let binary: string;
	try {
		binary = atob(data);
	} catch {
		throw invalidField("data", "is not valid base64");
	}
	return parseJsonBytes(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/** Any capture endpoint: the valid events of the body are accepted, each invalid one is rejected alone. */
export async function posthogCapture(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
	const { messages, key, sentAt } = unpack(await readPostHogBody(request, new URL(request.url)));
	if (typeof key !== "string" || key.length === 0) throw new ApiError(401, "Missing api_key");
	const tenant = await verifyKey(env, key, ["write"]);
	await enforceOrigin(request, env, tenant);
	await enforceRateLimit(env, tenant);
	if (messages.length === 0) throw invalidField("batch", "must not be empty");
	if (messages.length > EVENT_LIMITS.maxEventsPerBatch) {
		throw new ApiError(413, `At most ${EVENT_LIMITS.maxEventsPerBatch} events per request`, {
			details: [{ path: "batch", message: `more than ${EVENT_LIMITS.maxEventsPerBatch} events` }],
		});
	}
	const receivedAt = Date.now();
	const redact = redactionFor(env);
	await acceptValid(env, ctx, {
		tenant,
		source: "posthog",
		receivedAt,
		country: requestCountry(request),
		messages,
		where: (index) => `batch[${index}]`,
		toEvent: (message, place) =>
			isPlainObject(message)
				? validateAt(fromPostHog(message, sentAt, receivedAt), place, receivedAt, redact)
				: [{ path: place, message: "must be an object" }],
	});
	return json({ status: 1 });
}
