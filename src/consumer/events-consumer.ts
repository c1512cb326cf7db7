// The queue consumer: one RPC per tenant per batch, ack only what the aggregators made durable.
import { checkEventsMessage, type EventsMessage, type QueuedEvent } from "../events/schema";
import { PIPELINE_WIDE } from "../db/queries";
import { countProducer, reportProducerCounters } from "../producer/counters";
import { sendToDeadLetters } from "./dead-letters";

const RETRY_BASE_SECONDS = 2;
const RETRY_CAP_SECONDS = 300;

/** Exponential backoff from the delivery count, with jitter in [½, 1] of the step: 2 s, 4 s … 5 min. */
export function retryDelaySeconds(attempts: number, random: () => number = Math.random): number {
	const step = Math.min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** Math.min(Math.max(attempts - 1, 0), 16));
	return Math.max(1, Math.round(step * (0.5 + random() / 2)));
}

/** A message that can never be processed is dead-lettered at once, never retried forever. */
async function deadLetterPoison(env: Env, message: Message<unknown>, problem: string): Promise<void> {
	try {
		await sendToDeadLetters(env, message, `undecodable message: ${problem}`);
		message.ack();
	} catch (err) {
		console.error("dead-lettering a poison message failed; retrying it", { id: message.id }, err);
		message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
	}
}

interface TenantSlice {
	events: QueuedEvent[];
	messages: Message<unknown>[];
}

export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, ctx?: ExecutionContext): Promise<void> {
	countProducer(PIPELINE_WIDE, "consumer_batches", 1);
	ctx?.waitUntil(reportProducerCounters(env));
	const slices = new Map<string, TenantSlice>();
	for (const message of batch.messages) {
		const problem = checkEventsMessage(message.body);
		if (problem) {
			await deadLetterPoison(env, message, problem);
			continue;
		}
		const body = message.body as EventsMessage;
		let slice = slices.get(body.tenant);
		if (!slice) slices.set(body.tenant, (slice = { events: [], messages: [] }));
		slice.events.push(...body.events);
		slice.messages.push(message);
	}

	const failed = new Set<Message<unknown>>();
	await Promise.all(
		[...slices].map(async ([tenant, slice]) => {
			try {
				await env.AGGREGATOR.getByName(tenant).ingest(tenant, slice.events);
			} catch (err) {
				console.error("aggregator ingest failed", { tenant, events: slice.events.length }, err);
				for (const message of slice.messages) failed.add(message);
			}
		}),
	);
	for (const slice of slices.values()) {
		for (const message of slice.messages) {
			if (failed.has(message)) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
			else message.ack();
		}
	}
}
