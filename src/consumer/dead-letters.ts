// Dead letters: poison messages go straight to the dead-letter queue with their reason; its
// consumer keeps every dead message in D1 (as superjson, so typed values replay faithfully).
import superjson from "superjson";
import { insertDeadLetters, type NewDeadLetter } from "../sinks/d1/dead-letters.js";
import { utf8Length } from "../shared/bytes.js";
import { isPlainObject } from "../shared/objects.js";
import { type EventsMessage, type QueuedEvent } from "../event/model.js";
import { backoffMs, type BackoffPolicy } from "../shared/backoff.js";
import { decodeQueueBody, packedTenantOf, UNDECODABLE } from "../event/guard.js";

/** What the events consumer sends to the DLQ for a message it will never be able to process. */
export interface DeadLetterEnvelope {
	deadLetter: 1;
	/** The original queue message id. */
	id: string;
	tenant: string | null;
	reason: string;
	attempts: number;
	firstFailedAt: number;
	/** The original body, as the queue delivered it (the envelope travels as "v8", so typed values survive). */
	body: unknown;
	/** Set instead of `body` when the body could not travel in the envelope. */
	bodyOmitted?: string;
}

/** Bodies at least this large may not fit an envelope under the queue's 128 KB message limit. */
const LARGE_BODY_BYTES = 100_000;

/**
 * max_retries of the meterline-dead-letters consumer in wrangler.toml (a test keeps them equal).
 * Past it the platform discards a message, as nothing stands behind this queue. The var
 * DEAD_LETTER_MAX_RETRIES overrides it where the consumer runs with another max_retries (the
 * tests' config); it must never be set above the real one.
 */
export const DEAD_LETTER_MAX_RETRIES = 10;

/** While D1 refuses dead letters they wait 30 s, 1 min, 2 min … up to 1 h; unjittered, as dead letters are few. */
export const DEAD_LETTER_BACKOFF: BackoffPolicy = { baseMs: 30_000, capMs: 3_600_000 };

/** The reason kept for a message the platform moved here after the events consumer's max_retries. */
const MAX_RETRIES_EXHAUSTED = "delivery failed on every retry (max_retries exhausted)";

function tenantOf(body: unknown): string | null {
	return isPlainObject(body) && typeof body.tenant === "string" ? body.tenant : null;
}

/** The tenant of a message: from its body, or from the start of a packed text that is not JSON. */
function messageTenant(message: Message<unknown>, kept: unknown): string | null {
	return tenantOf(kept) ?? packedTenantOf(message.body);
}

/** A message's body as D1 keeps it: the value of its JSON text when it is text (as replay sends it), else as delivered. */
function keptBody(message: Message<unknown>): unknown {
	const decoded = decodeQueueBody(message.body);
	return decoded === UNDECODABLE ? message.body : decoded;
}

/**
 * Sends a poison message to the DLQ with its reason, instead of retrying it for nothing. The
 * envelope is structured-cloned ("v8"), so it is barely larger than the body; a body that still
 * does not fit is left out and the reason says so, rather than losing the reason to retries.
 */
export async function sendToDeadLetters(env: Env, message: Message<unknown>, reason: string): Promise<void> {
	const envelope = envelopeOf(message, reason);
	try {
		await env.DEAD_LETTERS.send(envelope, { contentType: "v8" });
	} catch (err) {
		// A refusal of a body this size is an outage, not the size limit: let the message retry.
		if (utf8Length(superjson.stringify(message.body)) < LARGE_BODY_BYTES) throw err;
		console.error("dead letter with its body refused; sending it without", { id: message.id }, err);
		await env.DEAD_LETTERS.send(
			{ ...envelope, body: null, bodyOmitted: "the body was too large for the dead-letter queue" },
			{ contentType: "v8" },
		);
	}
}

/**
 * Dead-letters the events of one message that its aggregator refused to count (too old to check
 * for duplicates, or past a cap), one envelope per reason, so none is dropped silently. The id is
 * derived from the message's, so a redelivery stores the same row again rather than a new one.
 */
export async function sendRefused(
	env: Env,
	message: Message<unknown>,
	tenant: string,
	refused: { event: QueuedEvent; reason: string }[],
): Promise<void> {
	const byReason = new Map<string, QueuedEvent[]>();
	for (const { event, reason } of refused) byReason.set(reason, [...(byReason.get(reason) ?? []), event]);
	for (const [reason, events] of byReason) {
		const body: EventsMessage = { v: 1, tenant, events };
		const envelope: DeadLetterEnvelope = {
			...envelopeOf(message, reason),
			id: `${message.id}:${reason.slice(0, reason.indexOf(":"))}`,
			body,
		};
		await env.DEAD_LETTERS.send(envelope, { contentType: "v8" });
	}
}

function envelopeOf(message: Message<unknown>, reason: string): DeadLetterEnvelope {
	const body = keptBody(message);
	return {
		deadLetter: 1,
		id: message.id,
		tenant: messageTenant(message, body),
		reason,
		attempts: message.attempts,
		firstFailedAt: message.timestamp.getTime(),
		body,
	};
}

function isEnvelope(body: unknown): body is DeadLetterEnvelope {
	return isPlainObject(body) && body.deadLetter === 1 && typeof body.id === "string" && "body" in body;
}

function maxRetries(env: Env): number {
	const configured = Number(env.DEAD_LETTER_MAX_RETRIES);
	return Number.isInteger(configured) && configured >= 0 ? configured : DEAD_LETTER_MAX_RETRIES;
}

/**
 * D1 refused a dead message: retry it with backoff while the platform allows more than one more
 * retry. From delivery max_retries on, when a retry could be its last, it is sent to this queue
 * again as a fresh message holding what its row would hold (an envelope keeps its original id,
 * reason, attempts and first failure), and acked only once the queue took it. A refused re-send
 * is retried; at delivery max_retries + 1 that retry is the platform's last, so a dead letter is
 * lost only if D1 and the queue both refuse it at its last two deliveries.
 */
async function keepDeadLetter(env: Env, message: Message<unknown>, limit: number): Promise<void> {
	const delaySeconds = backoffMs(message.attempts, DEAD_LETTER_BACKOFF) / 1000;
	if (message.attempts < limit) {
		message.retry({ delaySeconds });
		return;
	}
	const envelope = isEnvelope(message.body) ? message.body : envelopeOf(message, MAX_RETRIES_EXHAUSTED);
	try {
		await env.DEAD_LETTERS.send(envelope, { contentType: "v8", delaySeconds });
		message.ack();
	} catch (err) {
		const last = message.attempts > limit;
		console.error(
			last ? "re-sending a dead letter failed on its last delivery; it is lost" : "re-sending a dead letter failed; retrying it",
			{ id: envelope.id },
			err,
		);
		message.retry({ delaySeconds });
	}
}

/**
 * Stores a batch of dead messages in D1, in one transaction. A message the platform moved here
 * after max_retries carries its original body; one the consumer sent carries an envelope. If D1
 * refuses, no message is ever dropped (see keepDeadLetter).
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
	const now = new Date().toISOString();
	const rows: NewDeadLetter[] = batch.messages.map((message) => {
		if (isEnvelope(message.body)) {
			const envelope = message.body;
			return {
				id: envelope.id,
				tenant: envelope.tenant,
				body: superjson.stringify(envelope.body),
				error: envelope.bodyOmitted ? `${envelope.reason} (${envelope.bodyOmitted})` : envelope.reason,
				attempts: envelope.attempts,
				first_failed_at: new Date(envelope.firstFailedAt).toISOString(),
				last_failed_at: now,
			};
		}
		const body = keptBody(message);
		return {
			id: message.id,
			tenant: messageTenant(message, body),
			body: superjson.stringify(body),
			error: MAX_RETRIES_EXHAUSTED,
			attempts: message.attempts,
			first_failed_at: message.timestamp.toISOString(),
			last_failed_at: now,
		};
	});
	try {
		await insertDeadLetters(env.DB, rows);
		batch.ackAll();
	} catch (err) {
		console.error("storing dead letters failed; retrying or re-sending each", err);
		const limit = maxRetries(env);
		await Promise.all(batch.messages.map((message) => keepDeadLetter(env, message, limit)));
	}
}
