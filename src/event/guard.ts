// The queue's guard: a queue body must be an EventsMessage whose events hold exactly what the
// edge validator lets through, by the same FIELD_LIMITS. Anything else is a poison message. The
// consumer applies it to objects and unpacked text; a packed text's events are checked where they
// are parsed, in the aggregator (parseEventsJson).
import type { FieldIssue } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";
import { checkCountry, checkKeys, checkPerformance, checkString } from "./fields.js";
import { EVENT_FIELDS, type QueuedEvent } from "./model.js";
import { eventsPrefix } from "./pack.js";
import { MAX_QUANTITY, MICROS_PER_UNIT } from "./quantity.js";

const QUEUED_USAGE_FIELDS: ReadonlySet<string> = new Set(["sku", "unit", "micros"]);

/** What a queue body that is not JSON text decodes to: a poison message. */
export const UNDECODABLE = Symbol("undecodable");

/**
 * A queue body as a value: the producer sends JSON text (contentType "text"); objects still come
 * from messages sent as "json" (replays, messages sent before the text format).
 */
export function decodeQueueBody(body: unknown): unknown {
	if (typeof body !== "string") return body;
	try {
		return JSON.parse(body);
	} catch {
		return UNDECODABLE;
	}
}

const PACKED_START = '{"v":1,"tenant":"';

/**
 * The tenant of a message text the packer wrote (src/event/pack.ts), read from its start without
 * parsing it, or null for any other form. The aggregator parses and checks the events
 * (parseEventsJson), so the consumer never reads them.
 */
export function packedTenantOf(raw: unknown): string | null {
	if (typeof raw !== "string" || !raw.startsWith(PACKED_START)) return null;
	const end = raw.indexOf('"', PACKED_START.length);
	if (end < 0) return null;
	const tenant = raw.slice(PACKED_START.length, end);
	// The tenant as JSON writes it must be what the text holds (no escapes), then the events array.
	return tenant.length > 0 && raw.startsWith(eventsPrefix(tenant)) && raw.endsWith("]}") ? tenant : null;
}

/** The events array of a packed message text whose tenant packedTenantOf read. */
export function packedEventsOf(raw: string, tenant: string): string {
	return raw.slice(eventsPrefix(tenant).length, -1);
}

/** One message's events, as JSON text, parsed and checked by the same rules as a whole message. */
export function parseEventsJson(tenant: string, text: string): { events: QueuedEvent[] } | { problem: string } {
	let events: unknown;
	try {
		events = JSON.parse(text);
	} catch {
		return { problem: "not JSON text" };
	}
	const problem = checkEventsMessage({ v: 1, tenant, events });
	return problem === null ? { events: events as QueuedEvent[] } : { problem };
}

/** The first problem of a queue body (a poison message), or null when it is a valid events message. */
export function checkEventsMessage(body: unknown): string | null {
	if (body === UNDECODABLE) return "not JSON text";
	if (!isPlainObject(body) || body.v !== 1) return "not a v1 events message";
	if (typeof body.tenant !== "string" || body.tenant.length === 0) return "missing tenant";
	if (!Array.isArray(body.events)) return "events is not an array";
	const issues: FieldIssue[] = [];
	for (let index = 0; index < body.events.length && issues.length === 0; index++) {
		checkQueuedEvent(body.events[index], issues);
		for (const issue of issues) issue.index = index;
	}
	const [first] = issues;
	return first ? `events[${first.index}].${first.path}: ${first.message}` : null;
}

function checkQueuedEvent(raw: unknown, issues: FieldIssue[]): void {
	if (!isPlainObject(raw)) {
		issues.push({ path: "$", message: "must be an event object" });
		return;
	}
	checkKeys(raw, EVENT_FIELDS, "", issues);
	checkString(raw.id, "id", issues);
	checkString(raw.event, "event", issues);
	if (!Number.isSafeInteger(raw.timestamp) || (raw.timestamp as number) < 0)
		issues.push({ path: "timestamp", message: "must be epoch milliseconds" });
	if (raw.userId !== undefined) checkString(raw.userId, "userId", issues);
	if (raw.sessionId !== undefined) checkString(raw.sessionId, "sessionId", issues);
	if (raw.customerId !== undefined) checkString(raw.customerId, "customerId", issues);
	if (raw.route !== undefined) checkString(raw.route, "route", issues);
	if (raw.country !== undefined) checkCountry(raw.country, issues);
	if (raw.properties !== undefined && !isPlainObject(raw.properties)) issues.push({ path: "properties", message: "must be an object" });
	if (raw.performance !== undefined) checkPerformance(raw.performance, issues);
	const usage = raw.usage;
	if (usage === undefined) return;
	if (!isPlainObject(usage)) {
		issues.push({ path: "usage", message: "must be an object" });
		return;
	}
	checkKeys(usage, QUEUED_USAGE_FIELDS, "usage.", issues);
	checkString(usage.sku, "usage.sku", issues);
	checkString(usage.unit, "usage.unit", issues);
	const micros = usage.micros;
	if (!Number.isSafeInteger(micros) || (micros as number) < 0 || (micros as number) > MAX_QUANTITY * MICROS_PER_UNIT) {
		issues.push({ path: "usage.micros", message: "must be whole micro-units within range" });
	}
}
