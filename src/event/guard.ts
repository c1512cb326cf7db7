// The consumer's guard: a queue body must be an EventsMessage whose events hold exactly what the
// edge validator lets through, by the same FIELD_LIMITS. Anything else is a poison message.
import type { FieldIssue } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";
import { checkCountry, checkKeys, checkPerformance, checkString } from "./fields.js";
import { EVENT_FIELDS, type EventsMessage } from "./model.js";
import { eventsPrefix } from "./pack.js";
import { MAX_QUANTITY, MICROS_PER_UNIT } from "./quantity.js";

const QUEUED_USAGE_FIELDS: ReadonlySet<string> = new Set(["sku", "unit", "micros"]);

/** What a queue body that is not JSON text decodes to: a poison message. */
export const UNDECODABLE = Symbol("undecodable");

/**
 * A queue body as a value: the producer sends JSON text (contentType "text"); objects still come
 * from messages sent as "json" (the client's queue transport, replays, older deployments).
 */
export function decodeQueueBody(body: unknown): unknown {
	if (typeof body !== "string") return body;
	try {
		return JSON.parse(body);
	} catch {
		return UNDECODABLE;
	}
}

/**
 * The events of a checked message as a JSON array: cut from the text the packer wrote when the
 * body is that text (src/event/pack.ts), else serialized. The aggregator parses it again.
 */
export function eventsJsonOf(raw: unknown, message: EventsMessage): string {
	if (typeof raw === "string") {
		const prefix = eventsPrefix(message.tenant);
		if (raw.startsWith(prefix) && raw.endsWith("]}") && Object.keys(message).length === 3) return raw.slice(prefix.length, -1);
	}
	return JSON.stringify(message.events);
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
