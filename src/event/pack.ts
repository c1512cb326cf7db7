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

/** One packed queue message: its events, the JSON text that travels, and that text's UTF-8 bytes. */
export interface PackedMessage {
	body: EventsMessage;
	text: string;
	bytes: number;
}

/**
 * `{"v":1,"tenant":"…","events":` – what JSON.stringify writes before an EventsMessage's events
 * (its keys in this order); the message text is this, the events' JSON array, then "}".
 */
export function eventsPrefix(tenant: string): string {
	return `{"v":1,"tenant":${JSON.stringify(tenant)},"events":`;
}

/**
 * Splits one tenant's events into messages of at most `messageBytes` JSON each. Every event is
 * serialized once: the text measured is the text sent (contentType "text"), so neither the
 * runtime nor the local queue broker serializes the events again.
 */
export function packMessages(tenant: string, events: QueuedEvent[], limits = QUEUE_LIMITS): PackedMessage[] {
	if (events.length === 0) return [];
	const prefix = eventsPrefix(tenant);
	// The prefix and the closing "}" around the events' "[…]".
	const envelope = utf8Length(prefix) + 3;
	// A request's events almost always fit one message: measure them in one serialization, and
	// serialize event by event only when they must be split.
	const whole = JSON.stringify(events);
	const wholeBytes = envelope - 2 + utf8Length(whole);
	if (wholeBytes <= limits.messageBytes) return [{ body: { v: 1, tenant, events }, text: `${prefix}${whole}}`, bytes: wholeBytes }];
	const messages: PackedMessage[] = [];
	let current: QueuedEvent[] = [];
	let texts: string[] = [];
	let bytes = envelope;
	const close = () => messages.push({ body: { v: 1, tenant, events: current }, text: `${prefix}[${texts.join(",")}]}`, bytes });
	for (const event of events) {
		const text = JSON.stringify(event);
		const size = utf8Length(text);
		// Every event after the first in a message also costs the comma before it.
		if (current.length > 0 && bytes + 1 + size > limits.messageBytes) {
			close();
			current = [];
			texts = [];
			bytes = envelope;
		}
		bytes += current.length > 0 ? 1 + size : size;
		current.push(event);
		texts.push(text);
	}
	if (current.length > 0) close();
	return messages;
}

/** A packed message as sendBatch takes it: its text, which the consumers parse (src/event/guard.ts). */
export function queueMessage(message: PackedMessage): { body: string; contentType: "text" } {
	return { body: message.text, contentType: "text" };
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
		await queue.sendBatch(batch.map(queueMessage));
	}
}
