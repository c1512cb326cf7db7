// Dead letters: poison messages go straight to the dead-letter queue with their reason; its
// consumer keeps every dead message in D1 (as superjson, so typed values replay faithfully).
import superjson from "superjson";
import { insertDeadLetters, type NewDeadLetter } from "../db/queries";
import { utf8Length } from "../events/bytes";
import { isPlainObject } from "../events/schema";

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

function tenantOf(body: unknown): string | null {
	return isPlainObject(body) && typeof body.tenant === "string" ? body.tenant : null;
}

/**
 * Sends a poison message to the DLQ with its reason, instead of retrying it for nothing. The
 * envelope is structured-cloned ("v8"), so it is barely larger than the body; a body that still
 * does not fit is left out and the reason says so, rather than losing the reason to retries.
 */
export async function sendToDeadLetters(env: Env, message: Message<unknown>, reason: string): Promise<void> {
	const envelope: DeadLetterEnvelope = {
		deadLetter: 1,
		id: message.id,
		tenant: tenantOf(message.body),
		reason,
		attempts: message.attempts,
		firstFailedAt: message.timestamp.getTime(),
		body: message.body,
	};
	try {
		await env.DEAD_LETTERS.send(envelope, { contentType: "v8" });
	} catch (err) {
		// A refusal of a body this size is an outage, not the size limit: let the message retry.
		if (utf8Length(superjson.stringify(message.body)) < LARGE_BODY_BYTES) throw err;
		console.error("dead letter with its body refused; sending it without", { id: message.id }, err);
		await env.DEAD_LETTERS.send({ ...envelope, body: null, bodyOmitted: "the body was too large for the dead-letter queue" }, { contentType: "v8" });
	}
}

function isEnvelope(body: unknown): body is DeadLetterEnvelope {
	return isPlainObject(body) && body.deadLetter === 1 && typeof body.id === "string" && "body" in body;
}

/**
 * Stores a batch of dead messages in D1, in one transaction. A message the platform moved here
 * after max_retries carries its original body; one the consumer sent carries an envelope.
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
		return {
			id: message.id,
			tenant: tenantOf(message.body),
			body: superjson.stringify(message.body),
			error: "delivery failed on every retry (max_retries exhausted)",
			attempts: message.attempts,
			first_failed_at: message.timestamp.toISOString(),
			last_failed_at: now,
		};
	});
	try {
		await insertDeadLetters(env.DB, rows);
		batch.ackAll();
	} catch (err) {
		console.error("storing dead letters failed; the batch will be retried", err);
		batch.retryAll({ delaySeconds: 30 });
	}
}
