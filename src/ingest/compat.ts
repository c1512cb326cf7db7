// What the Segment- and PostHog-compatible APIs share: their events become Meterline events and go
// through the one validator, with the same redaction, rate limit and delivery as POST /v1/events;
// unlike it, a batch is accepted in part, and each rejected message is kept for the tenant.
import { insertRejections, REJECTION_LIMITS, type RejectionSource } from "../sinks/d1/rejections.js";
import { utf8Length } from "../shared/bytes.js";
import { invalidEvents } from "./events.js";
import { isPlainObject } from "../shared/objects.js";
import { REDACTED, type QueuedEvent } from "../event/model.js";
import { validateEvent } from "../event/validate.js";
import { parseIsoInstant } from "../shared/time.js";
import type { FieldIssue } from "../shared/errors.js";
import { capIssues } from "./caps.js";
import { countProducer, reportProducerCounters } from "../sinks/counters.js";
import { acceptEvents, fillCountry, redactionFor } from "./events.js";

/** A Meterline event built from a foreign message, before validation. */
export type RawEvent = Record<string, unknown>;

/**
 * Moves a `properties.usage` object ({sku, quantity, unit?}) to the event's metered usage, the
 * rule both compatible APIs share. Properties are copied, never mutated in place.
 */
export function withUsage(event: RawEvent, properties: unknown): RawEvent {
	if (!isPlainObject(properties)) return properties === undefined ? event : { ...event, properties };
	const { usage, ...rest } = properties;
	const out: RawEvent = { ...event, properties: rest };
	if (usage !== undefined) out.usage = usage;
	return out;
}

/**
 * Segment's and PostHog's clock-skew correction: a client's clock may be off, so the event time is
 * moved by the gap between when the server received the batch and when the client says it sent it.
 * A value that cannot be read is passed on unchanged for the validator to name.
 */
export function correctClockSkew(timestamp: unknown, sentAt: unknown, receivedAt: number): unknown {
	if (timestamp === undefined || timestamp === null) return undefined;
	const at = typeof timestamp === "string" ? parseIsoInstant(timestamp) : NaN;
	const sent = typeof sentAt === "string" ? parseIsoInstant(sentAt) : NaN;
	if (Number.isNaN(at) || Number.isNaN(sent)) return timestamp;
	return at + (receivedAt - sent);
}

/** A foreign id that is a number becomes its string; anything else is left for the validator. */
export function asId(value: unknown): unknown {
	return typeof value === "number" && Number.isFinite(value) ? String(value) : value;
}

/** Validates one mapped event: the event, or its issues named by the message's place in the foreign body. */
export function validateAt(raw: RawEvent, place: string, now: number, redact: ReadonlySet<string>): QueuedEvent | FieldIssue[] {
	const issues: FieldIssue[] = [];
	const event = validateEvent(raw, now, issues, redact);
	if (event) return event;
	for (const issue of issues) issue.path = `${place}.${issue.path}`;
	return issues;
}

/** One foreign request's messages, and how each becomes an event. */
export interface ForeignBatch {
	tenant: string;
	source: RejectionSource;
	receivedAt: number;
	/** The request's country, for events that name none. */
	country: string | undefined;
	messages: unknown[];
	/** Where message `index` sits in the foreign body: "batch[3]", or "$" for a single message. */
	where: (index: number) => string;
	/** The message as a valid event, or the issues that reject it alone. */
	toEvent: (message: unknown, place: string) => QueuedEvent | FieldIssue[];
}

interface Rejection {
	index: number;
	place: string;
	message: unknown;
	issues: FieldIssue[];
}

/** The field that carries a message's own id in each foreign API. */
const ID_FIELDS: Record<RejectionSource, string> = { segment: "messageId", posthog: "uuid" };
/** At most this many issues per stored rejection, as many as the validator's 400 reports. */
const MAX_ISSUES = 100;
/** A hostile body's long keys make long paths; the stored copy keeps each one short. */
const MAX_STORED_PATH = 200;
/** Credentials in a foreign body: never stored, whatever REDACT_KEYS says. */
const CREDENTIAL_KEYS = new Set(["writekey", "api_key", "token"]);

/**
 * Accepts the valid messages of a foreign request and rejects each invalid one alone, so one bad
 * event never costs an SDK the rest of its batch. The valid ones go to acceptEvents like
 * POST /v1/events'; each rejected one is counted and kept for GET /v1/rejections, inside
 * waitUntil. Only a request without one valid event fails: a 400 naming every bad field.
 */
export async function acceptValid(env: Env, ctx: ExecutionContext, batch: ForeignBatch): Promise<void> {
	const valid: { event: QueuedEvent; index: number; place: string; message: unknown }[] = [];
	const rejections: Rejection[] = [];
	batch.messages.forEach((message, index) => {
		const place = batch.where(index);
		const result = batch.toEvent(message, place);
		if (Array.isArray(result)) rejections.push({ index, place, message, issues: result });
		else valid.push({ event: result, index, place, message });
	});
	// A new event name or SKU past the tenant's caps rejects that message alone, like a bad field.
	const capped = new Map<number, FieldIssue[]>();
	for (const { index, path, message } of await capIssues(
		env,
		batch.tenant,
		valid.map((v) => v.event),
		false,
	)) {
		capped.set(index!, [...(capped.get(index!) ?? []), { path: `${valid[index!]!.place}.${path}`, message }]);
	}
	if (capped.size > 0) {
		countProducer(batch.tenant, "capped", capped.size);
		for (const [i, issues] of capped)
			rejections.push({ index: valid[i]!.index, place: valid[i]!.place, message: valid[i]!.message, issues });
		rejections.sort((a, b) => a.index - b.index);
	}
	const events = valid.filter((_v, i) => !capped.has(i)).map((v) => v.event);
	if (rejections.length > 0) {
		countProducer(batch.tenant, "rejected", rejections.length);
		ctx.waitUntil(keepRejections(env, batch, rejections).then(() => reportProducerCounters(env)));
	}
	if (events.length === 0) throw invalidEvents(rejections.flatMap(({ index, issues }) => issues.map((issue) => ({ index, ...issue }))));
	fillCountry(events, batch.country);
	await acceptEvents(env, ctx, batch.tenant, events, false);
}

/** Stores the first REJECTION_LIMITS.perRequest rejections; a failure is logged, never answered. */
async function keepRejections(env: Env, batch: ForeignBatch, rejections: Rejection[]): Promise<void> {
	try {
		const redact = redactionFor(env);
		const idField = ID_FIELDS[batch.source];
		const rows = rejections.slice(0, REJECTION_LIMITS.perRequest).map(({ place, message, issues }) => {
			const id = isPlainObject(message) ? message[idField] : undefined;
			return {
				event_id: typeof id === "string" ? id : null,
				place,
				issues: JSON.stringify(
					issues.slice(0, MAX_ISSUES).map(({ path, message }) => ({
						path: path.length > MAX_STORED_PATH ? `${path.slice(0, MAX_STORED_PATH)}…` : path,
						message,
					})),
				),
				body: storedBody(message, redact),
			};
		});
		await insertRejections(env.DB, batch.tenant, batch.source, batch.receivedAt, rows);
	} catch (err) {
		console.error("rejections not stored", { tenant: batch.tenant, source: batch.source, rejected: rejections.length }, err);
	}
}

/** The message as JSON text, redacted as events are, cut to REJECTION_LIMITS.bodyBytes with a marker. */
function storedBody(message: unknown, redact: ReadonlySet<string>): string {
	const text = JSON.stringify(message, (key, value: unknown) => {
		const lower = key.toLowerCase();
		return redact.has(lower) || CREDENTIAL_KEYS.has(lower) ? REDACTED : value;
	});
	const bytes = utf8Length(text);
	if (bytes <= REJECTION_LIMITS.bodyBytes) return text;
	const marker = `…[truncated from ${bytes} bytes]`;
	// encodeInto stops before a character that does not fit, so the cut never splits one.
	const { read } = new TextEncoder().encodeInto(text, new Uint8Array(REJECTION_LIMITS.bodyBytes - utf8Length(marker)));
	return text.slice(0, read) + marker;
}
