// Dead letters: poison messages go straight to the dead-letter queue with their reason; its
// consumer keeps every dead message in D1 (as superjson, so typed values replay faithfully).
import superjson from "superjson";
import { insertDeadLetters, type NewDeadLetter } from "../db/queries";
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
	/** superjson text of the original body. */
	body: string;
}

function tenantOf(body: unknown): string | null {
	return isPlainObject(body) && typeof body.tenant === "string" ? body.tenant : null;
}

/** Sends a poison message to the DLQ with its reason, instead of retrying it for nothing. */
export async function sendToDeadLetters(env: Env, message: Message<unknown>, reason: string): Promise<void> {
	const envelope: DeadLetterEnvelope = {
		deadLetter: 1,
		id: message.id,
		tenant: tenantOf(message.body),
		reason,
		attempts: message.attempts,
		firstFailedAt: message.timestamp.getTime(),
		body: superjson.stringify(message.body),
	};
	await env.DEAD_LETTERS.send(envelope, { contentType: "json" });
}

function isEnvelope(body: unknown): body is DeadLetterEnvelope {
	return isPlainObject(body) && body.deadLetter === 1 && typeof body.id === "string" && typeof body.body === "string";
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
				body: envelope.body,
				error: envelope.reason,
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
