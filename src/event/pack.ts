// Packs accepted events into as few queue messages as the Queues limits allow.
import { utf8Length } from "../shared/bytes.js";
import type { EventsMessage, QueuedEvent } from "./model.js";

/**
 * Queues limits: 128 KB per message, and 100 messages or 256 KB per sendBatch. We keep a margin
 * under each for the message envelope the platform adds.
 */
export interface QueueLimits {
	messageBytes: number;
	batchBytes: number;
	batchMessages: number;
}

export const QUEUE_LIMITS: QueueLimits = {
	messageBytes: 120_000,
	batchBytes: 250_000,
	batchMessages: 100,
};

/** Bytes of `{"v":1,"tenant":"…","events":[]}` around the events. */
function envelopeBytes(tenant: string): number {
	return utf8Length(JSON.stringify({ v: 1, tenant, events: [] }));
}

/** Splits one tenant's events into messages of at most `messageBytes` JSON each. */
export function packMessages(tenant: string, events: QueuedEvent[], limits = QUEUE_LIMITS): { body: EventsMessage; bytes: number }[] {
	const envelope = envelopeBytes(tenant);
	if (events.length === 0) return [];
	// A request's events almost always fit one message: measure them in one serialization (the
	// envelope's "[]" is in both), and measure event by event only when they must be split.
	const whole = envelope - 2 + utf8Length(JSON.stringify(events));
	if (whole <= limits.messageBytes) return [{ body: { v: 1, tenant, events }, bytes: whole }];
	const messages: { body: EventsMessage; bytes: number }[] = [];
	let current: QueuedEvent[] = [];
	let bytes = envelope;
	for (const event of events) {
		const size = utf8Length(JSON.stringify(event));
		// Every event after the first in a message also costs the comma before it.
		if (current.length > 0 && bytes + 1 + size > limits.messageBytes) {
			messages.push({ body: { v: 1, tenant, events: current }, bytes });
			current = [];
			bytes = envelope;
		}
		bytes += current.length > 0 ? 1 + size : size;
		current.push(event);
	}
	if (current.length > 0) messages.push({ body: { v: 1, tenant, events: current }, bytes });
	return messages;
}

/** Groups messages into sendBatch calls within the count and byte limits. */
export function groupIntoBatches<T extends { bytes: number }>(messages: T[], limits = QUEUE_LIMITS): T[][] {
	const batches: T[][] = [];
	let current: T[] = [];
	let bytes = 0;
	for (const message of messages) {
		if (current.length > 0 && (current.length === limits.batchMessages || bytes + message.bytes > limits.batchBytes)) {
			batches.push(current);
			current = [];
			bytes = 0;
		}
		current.push(message);
		bytes += message.bytes;
	}
	if (current.length > 0) batches.push(current);
	return batches;
}

/** Sends one tenant's events to the queue, packed, once; the caller owns retries. */
export async function enqueueEvents(queue: Queue, tenant: string, events: QueuedEvent[]): Promise<void> {
	for (const batch of groupIntoBatches(packMessages(tenant, events))) {
		await queue.sendBatch(batch.map(({ body }) => ({ body, contentType: "json" as const })));
	}
}
