// The one event validator: the producer runs it at the edge, the consumer reuses its guard.
import { ApiError, type FieldIssue } from "../shared/errors";
import { utf8Length } from "../shared/bytes";
import { uuidv7 } from "../shared/ids";
import { MAX_QUANTITY, MICROS_PER_UNIT, toMicros } from "./quantity";
import { parseIsoInstant } from "../shared/time";

/** An accepted event as it travels through the queue to the aggregator. */
export interface QueuedEvent {
	id: string;
	event: string;
	/** Epoch milliseconds. */
	timestamp: number;
	userId?: string;
	sessionId?: string;
	properties?: Record<string, unknown>;
	performance?: { duration?: number; statusCode?: number };
	/** Quantity in integer micro-units, so sums are exact. */
	usage?: { sku: string; unit: string; micros: number };
}

/** One queue message: a slice of one tenant's events. */
export interface EventsMessage {
	v: 1;
	tenant: string;
	events: QueuedEvent[];
}

const DAY_MS = 86_400_000;

export const EVENT_LIMITS = {
	maxEventsPerBatch: 1000,
	maxBodyBytes: 1_048_576,
	maxPropertiesBytes: 32 * 1024,
	maxDepth: 16,
	/** The oldest timestamp the edge accepts. */
	maxPastMs: 35 * DAY_MS,
	maxFutureMs: 5 * 60_000,
	/**
	 * How long after the edge accepted an event it may still reach its aggregator (queue retries,
	 * spills, dead-letter replays). Ids are remembered by event time for maxPastMs + this, so
	 * every copy an aggregator can still receive is checked against them.
	 */
	deliveryGraceMs: 7 * DAY_MS,
	/** A day: bounds every duration, so no sum of them can reach Infinity. */
	maxDurationMs: DAY_MS,
} as const;

/** How long an aggregator remembers event ids, by event time. */
export const DEDUPE_WINDOW_MS = EVENT_LIMITS.maxPastMs + EVENT_LIMITS.deliveryGraceMs;

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const EVENT_FIELDS = new Set(["id", "event", "timestamp", "userId", "sessionId", "properties", "performance", "usage"]);
const PERFORMANCE_FIELDS = new Set(["duration", "statusCode"]);
const USAGE_FIELDS = new Set(["sku", "quantity", "unit"]);
const QUEUED_USAGE_FIELDS = new Set(["sku", "unit", "micros"]);
const NO_REDACTION: ReadonlySet<string> = new Set();
export const REDACTED = "[redacted]";

/** The redaction set from a comma-separated key list, matched case-insensitively. */
export function redactionKeys(list: string | undefined): ReadonlySet<string> {
	return new Set((list ?? "").split(",").map((key) => key.trim().toLowerCase()).filter(Boolean));
}

/** At most this many field issues are reported, so a hostile batch cannot inflate the answer. */
const MAX_ISSUES = 100;

type Issues = FieldIssue[];

export function isPlainObject(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Validates a request body (one event, or {"events": [...]}) all-or-nothing.
 * Returns the normalized events, or throws a 400 with one detail per bad field.
 */
export function parseEventsBody(body: unknown, now: number, redact: ReadonlySet<string> = NO_REDACTION): QueuedEvent[] {
	return validateEvents(isPlainObject(body) && "events" in body ? batchEntries(body) : [body], now, redact);
}

/**
 * Validates events all-or-nothing: a 400 with a detail (index and path) per bad field, or every
 * event normalized. `where` prefixes each path with the event's place in a foreign body
 * (e.g. "batch[3]"), for the Segment and PostHog APIs.
 */
export function validateEvents(raw: unknown[], now: number, redact: ReadonlySet<string>, where?: (index: number) => string): QueuedEvent[] {
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
	if (issues.length > 0) throw invalidEvents(issues);
	return events;
}

/** The 400 for a batch refused whole: one detail per bad field, at most MAX_ISSUES. */
export function invalidEvents(issues: FieldIssue[]): ApiError {
	const bad = new Set(issues.map((issue) => issue.index)).size;
	return new ApiError(400, `${bad} invalid event${bad === 1 ? "" : "s"}; nothing was accepted`, issues.slice(0, MAX_ISSUES));
}

/** The entries of {"events": [...]}; problems with the batch itself concern no single event. */
function batchEntries(body: Record<string, unknown>): unknown[] {
	const issues: Issues = [];
	checkKeys(body, new Set(["events"]), "", issues);
	const { events } = body;
	if (!Array.isArray(events)) issues.push({ path: "events", message: "must be an array" });
	else if (events.length < 1 || events.length > EVENT_LIMITS.maxEventsPerBatch) {
		issues.push({ path: "events", message: `must hold 1 to ${EVENT_LIMITS.maxEventsPerBatch} events, got ${events.length}` });
	}
	if (issues.length > 0) throw new ApiError(400, `Invalid batch: ${issues.map((i) => `${i.path} ${i.message}`).join("; ")}`, issues);
	return events as unknown[];
}

/** Validates one event, pushing an issue per bad field. Returns undefined if any field was bad. */
export function validateEvent(raw: unknown, now: number, issues: Issues, redact: ReadonlySet<string> = NO_REDACTION): QueuedEvent | undefined {
	const start = issues.length;
	if (!isPlainObject(raw)) {
		issues.push({ path: "$", message: "must be an event object" });
		return undefined;
	}
	checkKeys(raw, EVENT_FIELDS, "", issues);

	const id = raw.id === undefined ? uuidv7(now) : checkString(raw.id, "id", 1, 128, issues);
	const name = checkString(raw.event, "event", 1, 200, issues);
	const timestamp = raw.timestamp === undefined ? now : checkTimestamp(raw.timestamp, now, issues);
	const userId = raw.userId === undefined ? undefined : checkString(raw.userId, "userId", 0, 256, issues);
	const sessionId = raw.sessionId === undefined ? undefined : checkString(raw.sessionId, "sessionId", 0, 256, issues);
	const properties = raw.properties === undefined ? undefined : checkProperties(raw.properties, issues, redact);
	const performance = raw.performance === undefined ? undefined : checkPerformance(raw.performance, issues);
	const usage = raw.usage === undefined ? undefined : checkUsage(raw.usage, issues);
	if (issues.length > start) return undefined;

	const event: QueuedEvent = { id: id!, event: name!, timestamp: timestamp! };
	if (userId !== undefined) event.userId = userId;
	if (sessionId !== undefined) event.sessionId = sessionId;
	if (properties !== undefined) event.properties = properties;
	if (performance !== undefined) event.performance = performance;
	if (usage !== undefined) event.usage = usage;
	return event;
}

function checkKeys(object: Record<string, unknown>, allowed: Set<string>, prefix: string, issues: Issues): void {
	for (const key of Object.keys(object)) {
		if (FORBIDDEN_KEYS.has(key)) issues.push({ path: prefix + key, message: "forbidden key" });
		else if (!allowed.has(key)) issues.push({ path: prefix + key, message: "unknown field" });
	}
}

function checkString(value: unknown, path: string, min: number, max: number, issues: Issues): string | undefined {
	if (typeof value !== "string") issues.push({ path, message: "must be a string" });
	else if (value.length < min || value.length > max) issues.push({ path, message: `must be ${min}-${max} characters` });
	else return value;
	return undefined;
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
	if (ms < now - EVENT_LIMITS.maxPastMs) issues.push({ path: "timestamp", message: "is more than 35 days in the past (older events cannot be deduplicated)" });
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

function checkPerformance(value: unknown, issues: Issues): QueuedEvent["performance"] {
	if (!isPlainObject(value)) {
		issues.push({ path: "performance", message: "must be an object" });
		return undefined;
	}
	checkKeys(value, PERFORMANCE_FIELDS, "performance.", issues);
	const out: NonNullable<QueuedEvent["performance"]> = {};
	const { duration, statusCode } = value;
	if (duration !== undefined) {
		if (typeof duration !== "number" || !Number.isFinite(duration) || duration < 0 || duration > EVENT_LIMITS.maxDurationMs) {
			issues.push({ path: "performance.duration", message: `must be a number of milliseconds from 0 to ${EVENT_LIMITS.maxDurationMs}` });
		} else out.duration = duration;
	}
	if (statusCode !== undefined) {
		if (!Number.isInteger(statusCode) || (statusCode as number) < 100 || (statusCode as number) > 599) {
			issues.push({ path: "performance.statusCode", message: "must be an integer 100-599" });
		} else out.statusCode = statusCode as number;
	}
	return out;
}

function checkUsage(value: unknown, issues: Issues): QueuedEvent["usage"] {
	if (!isPlainObject(value)) {
		issues.push({ path: "usage", message: "must be an object" });
		return undefined;
	}
	checkKeys(value, USAGE_FIELDS, "usage.", issues);
	const sku = checkString(value.sku, "usage.sku", 1, 128, issues);
	const unit = value.unit === undefined ? "unit" : checkString(value.unit, "usage.unit", 1, 32, issues);
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

/**
 * The consumer's guard: a queue body must be an EventsMessage whose events hold exactly what the
 * producer's validation lets through. Returns the first problem (a poison message), or null.
 */
export function checkEventsMessage(body: unknown): string | null {
	if (!isPlainObject(body) || body.v !== 1) return "not a v1 events message";
	if (typeof body.tenant !== "string" || body.tenant.length === 0) return "missing tenant";
	if (!Array.isArray(body.events)) return "events is not an array";
	const issues: Issues = [];
	for (let index = 0; index < body.events.length && issues.length === 0; index++) {
		checkQueuedEvent(body.events[index], issues);
		for (const issue of issues) issue.index = index;
	}
	const [first] = issues;
	return first ? `events[${first.index}].${first.path}: ${first.message}` : null;
}

function checkQueuedEvent(raw: unknown, issues: Issues): void {
	if (!isPlainObject(raw)) {
		issues.push({ path: "$", message: "must be an event object" });
		return;
	}
	checkKeys(raw, EVENT_FIELDS, "", issues);
	checkString(raw.id, "id", 1, 128, issues);
	checkString(raw.event, "event", 1, 200, issues);
	if (!Number.isSafeInteger(raw.timestamp) || (raw.timestamp as number) < 0) issues.push({ path: "timestamp", message: "must be epoch milliseconds" });
	if (raw.userId !== undefined) checkString(raw.userId, "userId", 0, 256, issues);
	if (raw.sessionId !== undefined) checkString(raw.sessionId, "sessionId", 0, 256, issues);
	if (raw.properties !== undefined && !isPlainObject(raw.properties)) issues.push({ path: "properties", message: "must be an object" });
	if (raw.performance !== undefined) checkPerformance(raw.performance, issues);
	const usage = raw.usage;
	if (usage === undefined) return;
	if (!isPlainObject(usage)) {
		issues.push({ path: "usage", message: "must be an object" });
		return;
	}
	checkKeys(usage, QUEUED_USAGE_FIELDS, "usage.", issues);
	checkString(usage.sku, "usage.sku", 1, 128, issues);
	checkString(usage.unit, "usage.unit", 1, 32, issues);
	const micros = usage.micros;
	if (!Number.isSafeInteger(micros) || (micros as number) < 0 || (micros as number) > MAX_QUANTITY * MICROS_PER_UNIT) {
		issues.push({ path: "usage.micros", message: "must be whole micro-units within range" });
	}
}
