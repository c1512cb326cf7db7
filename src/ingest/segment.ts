// Segment's HTTP Tracking API (/v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group,
// /v1/alias, /v1/batch, and analytics.js's short /v1/t, /v1/i, … /v1/b), so Segment's SDKs work
// unchanged with only the host changed. The body is JSON whatever its Content-Type: analytics.js
// sends text/plain.
import { verifyKey } from "../http/auth.js";
import { enforceOrigin } from "../http/cors.js";
import { utf8Length } from "../shared/bytes.js";
import { isPlainObject } from "../shared/objects.js";
import { type QueuedEvent } from "../event/model.js";
import { parseJsonBytes, readMaybeGzip } from "../http/body.js";
import { ApiError, invalidField, json, type FieldIssue } from "../shared/errors.js";
import { enforceRateLimit, redactionFor, requestCountry } from "./events.js";
import { acceptValid, asId, correctClockSkew, validateAt, withUsage, type RawEvent } from "./compat.js";

/** Segment's limits: 32 KB per message (a larger one is rejected alone) and 500 KB per batch (a 400 it does not retry). */
export const SEGMENT_LIMITS = { messageBytes: 32 * 1024, batchBytes: 500 * 1024 } as const;

export type SegmentType = "track" | "identify" | "page" | "screen" | "group" | "alias";

/** Segment call type → Meterline event name; a track keeps its own name. */
const EVENT_NAMES: Record<SegmentType, string | null> = {
	track: null,
	identify: "$identify",
	page: "$page",
	screen: "$screen",
	group: "$group",
	alias: "$alias",
};

/** The write key from HTTP Basic (`base64("<writeKey>:")`) or from `writeKey` in the body. */
function segmentKey(request: Request, body: Record<string, unknown>): string | null {
	const basic = /^Basic\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
	if (basic) {
		try {
			const [user] = atob(basic[1]!).split(":");
			if (user) return user;
		} catch {
			// An unreadable Basic header falls through to the body's writeKey.
		}
	}
	return typeof body.writeKey === "string" ? body.writeKey : null;
}

/** Maps one Segment message to a Meterline event (validated afterwards). */
export function fromSegment(message: Record<string, unknown>, type: SegmentType, sentAt: unknown, receivedAt: number): RawEvent {
	const event: RawEvent = {
		id: asId(message.messageId),
		event: EVENT_NAMES[type] ?? message.event,
		userId: asId(message.userId ?? message.anonymousId ?? undefined),
		timestamp: correctClockSkew(message.timestamp, message.sentAt ?? sentAt, receivedAt),
	};
	let properties: Record<string, unknown>;
	if (type === "identify" || type === "group") properties = { ...(isPlainObject(message.traits) ? message.traits : {}) };
	else properties = { ...(isPlainObject(message.properties) ? message.properties : {}) };
	event.customerId = asId(segmentCustomer(message, type, properties));
	for (const key of Object.keys(event)) if (event[key] === undefined) delete event[key];
	if ((type === "page" || type === "screen") && message.name !== undefined) properties.name = message.name;
	if (type === "group" && message.groupId !== undefined) properties.groupId = message.groupId;
	if (type === "alias" && message.previousId !== undefined) properties.previousId = message.previousId;
	if (message.context !== undefined) properties.context = message.context;
	return withUsage(event, Object.keys(properties).length > 0 ? properties : undefined);
}

/**
 * The customer a Segment message is billed to: a group call's own groupId; else, for track, page
 * and screen, `properties.customerId`; else `context.groupId`, Segment's common field for the
 * account a call belongs to. It is read, not moved: properties stay as the SDK sent them, as every
 * other Segment destination receives them.
 */
function segmentCustomer(message: Record<string, unknown>, type: SegmentType, properties: Record<string, unknown>): unknown {
	const context = isPlainObject(message.context) ? message.context : {};
	if (type === "group") return message.groupId ?? context.groupId ?? undefined;
	const own = type === "track" || type === "page" || type === "screen" ? properties.customerId : undefined;
	return own ?? context.groupId ?? undefined;
}

/** A handler for one Segment endpoint; `batch` takes {"batch": [...]} of typed messages. */
export function segmentHandler(endpoint: SegmentType | "batch") {
	return async (request: Request, env: Env, ctx: ExecutionContext): Promise<Response> => {
		let bytes: Uint8Array;
		try {
			bytes = await readMaybeGzip(request, SEGMENT_LIMITS.batchBytes, false);
		} catch (err) {
			// Segment's SDKs retry a 413 but not a 400: oversize must not be retried forever.
			if (err instanceof ApiError && err.status === 413)
				throw new ApiError(400, err.message, { details: err.details, code: "payload_too_large" });
			throw err;
		}
		const body = parseJsonBytes(bytes);
		if (!isPlainObject(body)) throw invalidField("body", "must be a JSON object");
		const key = segmentKey(request, body);
		if (!key) throw new ApiError(401, "Missing write key (HTTP Basic or writeKey)");
		const tenant = await verifyKey(env, key, ["write"]);
		await enforceOrigin(request, env, tenant);
		await enforceRateLimit(env, tenant);

		const receivedAt = Date.now();
		const redact = redactionFor(env);
		if (endpoint === "batch" && (!Array.isArray(body.batch) || body.batch.length === 0))
			throw invalidField("batch", "must be a non-empty array");
		await acceptValid(env, ctx, {
			tenant,
			source: "segment",
			receivedAt,
			country: requestCountry(request),
			messages: endpoint === "batch" ? (body.batch as unknown[]) : [body],
			where: (index) => where(endpoint, index),
			toEvent: (message, place) => segmentEvent(message, endpoint, place, body.sentAt, receivedAt, redact),
		});
		return json({ success: true });
	};
}

/** One message as a valid event, or the issues that reject it alone (a batch entry names its type). */
function segmentEvent(
	message: unknown,
	endpoint: SegmentType | "batch",
	place: string,
	sentAt: unknown,
	receivedAt: number,
	redact: ReadonlySet<string>,
): QueuedEvent | FieldIssue[] {
	if (!isPlainObject(message)) return [{ path: place, message: "must be an object" }];
	const type = endpoint === "batch" ? message.type : endpoint;
	if (typeof type !== "string" || !Object.hasOwn(EVENT_NAMES, type))
		return [{ path: `${place}.type`, message: `must be one of ${Object.keys(EVENT_NAMES).join(", ")}` }];
	const size = utf8Length(JSON.stringify(message));
	if (size > SEGMENT_LIMITS.messageBytes) return [{ path: place, message: `is ${size} bytes, over Segment's 32 KB limit` }];
	return validateAt(fromSegment(message, type as SegmentType, sentAt, receivedAt), place, receivedAt, redact);
}

function where(endpoint: SegmentType | "batch", index: number): string {
	return endpoint === "batch" ? `batch[${index}]` : "$";
}

/**
 * POST /v1/m: analytics.js's own delivery metrics, sent to the API host it is given. They are not
 * the tenant's events and carry no key: acknowledged and dropped, so the SDK logs no error.
 */
export function segmentSdkMetrics(): Response {
	return json({ success: true });
}
