// The one event validator, run at the edge (and by the client before it sends): every bad field
// is reported with its place, prototype keys are refused at any depth, and redaction happens in
// the same pass. It returns issues; turning them into an HTTP answer is the caller's business.
import { utf8Length } from "../shared/bytes.js";
import type { FieldIssue } from "../shared/errors.js";
import { uuidv7 } from "../shared/ids.js";
import { isPlainObject } from "../shared/objects.js";
import { parseIsoInstant } from "../shared/time.js";
import { checkCountry, checkKeys, checkPerformance, checkString } from "./fields.js";
import { EVENT_FIELDS, EVENT_LIMITS, FORBIDDEN_KEYS, REDACTED, type QueuedEvent } from "./model.js";
import { toMicros } from "./quantity.js";

const USAGE_FIELDS: ReadonlySet<string> = new Set(["sku", "quantity", "unit"]);
const NO_REDACTION: ReadonlySet<string> = new Set();

/** What validation found: the normalized events, or (when `issues` is not empty) why none may be accepted. */
export interface Validation {
	events: QueuedEvent[];
	/** Issues with an `index` concern one event; without one, the batch itself. */
	issues: FieldIssue[];
}

/** The redaction set from a comma-separated key list, matched case-insensitively. */
export function redactionKeys(list: string | undefined): ReadonlySet<string> {
	return new Set(
		(list ?? "")
			.split(",")
			.map((key) => key.trim().toLowerCase())
			.filter(Boolean),
	);
}

type Issues = FieldIssue[];

/** Validates a request body: one event, or {"events": [...]}. */
export function parseEventsBody(body: unknown, now: number, redact: ReadonlySet<string> = NO_REDACTION): Validation {
	if (!isPlainObject(body) || !("events" in body)) return validateEvents([body], now, redact);
	const entries = batchEntries(body);
	return Array.isArray(entries) ? validateEvents(entries, now, redact) : { events: [], issues: entries.issues };
}

/**
 * Validates events: an issue (with index and path) per bad field, and every valid event
 * normalized. `where` prefixes each path with the event's place in a foreign body (e.g.
 * "batch[3]"), for the Segment and PostHog APIs.
 */
export function validateEvents(raw: unknown[], now: number, redact: ReadonlySet<string>, where?: (index: number) => string): Validation {
	const issues: Issues = [];
	const events: QueuedEvent[] = [];
	for (let index = 0; index < raw.length; index++) {
		const before = issues.length;
		const event = validateEvent(raw[index], now, issues, redact);
		for (let i = before; i < issues.length; i++) {
			const issue = issues[i]!;
			issue.index = index;
			if (where) issue.path = `${where(index)}.${issue.path}`;
		}
		if (event) events.push(event);
	}
	return { events, issues };
}

/** The entries of {"events": [...]}, or the problems of the batch itself, which concern no single event. */
function batchEntries(body: Record<string, unknown>): unknown[] | { issues: FieldIssue[] } {
	const issues: Issues = [];
	checkKeys(body, new Set(["events"]), "", issues);
	const { events } = body;
	if (!Array.isArray(events)) issues.push({ path: "events", message: "must be an array" });
	else if (events.length < 1 || events.length > EVENT_LIMITS.maxEventsPerBatch) {
		issues.push({ path: "events", message: `must hold 1 to ${EVENT_LIMITS.maxEventsPerBatch} events, got ${events.length}` });
	}
	return issues.length > 0 ? { issues } : (events as unknown[]);
}

/** Validates one event, pushing an issue per bad field. Returns undefined if any field was bad. */
export function validateEvent(
	raw: unknown,
	now: number,
	issues: Issues,
	redact: ReadonlySet<string> = NO_REDACTION,
): QueuedEvent | undefined {
	const start = issues.length;
	if (!isPlainObject(raw)) {
		issues.push({ path: "$", message: "must be an event object" });
		return undefined;
	}
	checkKeys(raw, EVENT_FIELDS, "", issues);

	const id = raw.id === undefined ? uuidv7(now) : checkString(raw.id, "id", issues);
	const name = checkString(raw.event, "event", issues);
	const timestamp = raw.timestamp === undefined ? now : checkTimestamp(raw.timestamp, now, issues);
	const userId = raw.userId === undefined ? undefined : checkString(raw.userId, "userId", issues);
	const sessionId = raw.sessionId === undefined ? undefined : checkString(raw.sessionId, "sessionId", issues);
	const customerId = raw.customerId === undefined ? undefined : checkString(raw.customerId, "customerId", issues);
	const route = raw.route === undefined ? undefined : checkString(raw.route, "route", issues);
	const country = raw.country === undefined ? undefined : checkCountry(raw.country, issues);
	const properties = raw.properties === undefined ? undefined : checkProperties(raw.properties, issues, redact);
	const performance = raw.performance === undefined ? undefined : checkPerformance(raw.performance, issues);
	const usage = raw.usage === undefined ? undefined : checkUsage(raw.usage, issues);
	if (issues.length > start) return undefined;

	const event: QueuedEvent = { id: id!, event: name!, timestamp: timestamp! };
	if (userId !== undefined) event.userId = userId;
	if (sessionId !== undefined) event.sessionId = sessionId;
	if (customerId !== undefined) event.customerId = customerId;
	if (route !== undefined) event.route = route;
	if (country !== undefined) event.country = country;
	if (properties !== undefined) event.properties = properties;
	if (performance !== undefined) event.performance = performance;
	if (usage !== undefined) event.usage = usage;
	return event;
}

function checkTimestamp(value: unknown, now: number, issues: Issues): number | undefined {
	let ms: number;
	if (typeof value === "number") {
		if (!Number.isSafeInteger(value)) {
			issues.push({ path: "timestamp", message: "epoch milliseconds must be an integer" });
			return undefined;
		}
		ms = value;
	} else if (typeof value === "string") {
		ms = parseIsoInstant(value);
		if (Number.isNaN(ms)) {
			issues.push({ path: "timestamp", message: "must be an ISO 8601 date-time or epoch milliseconds" });
			return undefined;
		}
	} else {
		issues.push({ path: "timestamp", message: "must be an ISO 8601 string or epoch milliseconds" });
		return undefined;
	}
	if (ms < now - EVENT_LIMITS.maxPastMs)
		issues.push({ path: "timestamp", message: "is more than 35 days in the past (older events cannot be deduplicated)" });
	else if (ms > now + EVENT_LIMITS.maxFutureMs) issues.push({ path: "timestamp", message: "is more than 5 minutes in the future" });
	else return ms;
	return undefined;
}

function checkProperties(value: unknown, issues: Issues, redact: ReadonlySet<string>): Record<string, unknown> | undefined {
	if (!isPlainObject(value)) {
		issues.push({ path: "properties", message: "must be an object" });
		return undefined;
	}
	const before = issues.length;
	walkProperties(value, "properties", 1, issues, redact);
	if (issues.length > before) return undefined;
	const bytes = utf8Length(JSON.stringify(value));
	if (bytes > EVENT_LIMITS.maxPropertiesBytes) {
		issues.push({ path: "properties", message: `serialized size ${bytes} exceeds ${EVENT_LIMITS.maxPropertiesBytes} bytes` });
		return undefined;
	}
	return value;
}

/**
 * Refuses prototype-polluting keys at any depth and nesting deeper than the limit, and replaces
 * the value of every key in `redact` (lower-cased) with "[redacted]", in the same single pass.
 */
function walkProperties(value: unknown, path: string, depth: number, issues: Issues, redact: ReadonlySet<string>): void {
	if (typeof value !== "object" || value === null) return;
	if (depth > EVENT_LIMITS.maxDepth) {
		issues.push({ path, message: `nesting deeper than ${EVENT_LIMITS.maxDepth} levels` });
		return;
	}
	if (Array.isArray(value)) {
		for (let i = 0; i < value.length; i++) walkProperties(value[i], `${path}[${i}]`, depth + 1, issues, redact);
		return;
	}
	for (const key of Object.keys(value)) {
		const child = `${path}.${key}`;
		if (FORBIDDEN_KEYS.has(key)) issues.push({ path: child, message: "forbidden key" });
		else if (redact.size > 0 && redact.has(key.toLowerCase())) (value as Record<string, unknown>)[key] = REDACTED;
		else walkProperties((value as Record<string, unknown>)[key], child, depth + 1, issues, redact);
	}
}

function checkUsage(value: unknown, issues: Issues): QueuedEvent["usage"] {
	if (!isPlainObject(value)) {
		issues.push({ path: "usage", message: "must be an object" });
		return undefined;
	}
	checkKeys(value, USAGE_FIELDS, "usage.", issues);
	const sku = checkString(value.sku, "usage.sku", issues);
	const unit = value.unit === undefined ? "unit" : checkString(value.unit, "usage.unit", issues);
	let micros: number | undefined;
	if (value.quantity === undefined) issues.push({ path: "usage.quantity", message: "is required" });
	else {
		const result = toMicros(value.quantity);
		if (typeof result === "string") issues.push({ path: "usage.quantity", message: result });
		else micros = result;
	}
	if (sku === undefined || unit === undefined || micros === undefined) return undefined;
	return { sku, unit, micros };
}
