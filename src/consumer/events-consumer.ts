// The queue consumer: one RPC per tenant per batch, ack only what the aggregators made durable.
import { checkEventsMessage, decodeQueueBody, packedEventsOf, packedTenantOf } from "../event/guard.js";
import type { EventsMessage } from "../event/model.js";
import { PIPELINE_WIDE } from "../sinks/d1/metrics.js";
import { countProducer, reportProducerCounters } from "../sinks/counters.js";
import { backoffMs, type BackoffPolicy } from "../shared/backoff.js";
import type { IngestResult } from "../aggregator/ingest.js";
import { sendRefused, sendToDeadLetters } from "./dead-letters.js";

/**
 * max_retries of the meterline-events consumer in wrangler.toml (a test keeps the two equal). With
 * RETRY_BACKOFF its retries wait at least 5,311 s (1 h 28 min, jitter at its lowest) and at most
 * 10,622 s before the message is dead-lettered, so an hour-long aggregator outage needs no replay.
 */
export const EVENTS_MAX_RETRIES = 25;

/** 2 s doubling to a 10 min cap, jittered so retries after a shared outage spread out. */
const RETRY_BACKOFF: BackoffPolicy = { baseMs: 2_000, capMs: 600_000, jitter: true };

/** The delay before retrying a message delivered `attempts` times: 2 s, 4 s … 10 min, jittered into [½, 1], in whole seconds. */
export function retryDelaySeconds(attempts: number, random: () => number = Math.random): number {
	return Math.max(1, Math.round(backoffMs(attempts, RETRY_BACKOFF, random) / 1000));
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

/**
 * Sends the events an aggregator refused to the DLQ, per message. A message whose refused events
 * could not be sent is retried: its counted events are then duplicates, its refused ones refused again.
 */
async function deadLetterRefused(
	env: Env,
	tenant: string,
	slice: TenantSlice,
	refused: IngestResult["refused"],
	failed: Set<Message<unknown>>,
	poisoned: Set<Message<unknown>>,
): Promise<void> {
	const reasons = new Map(refused.map((r) => [r.id, r.reason]));
	for (const message of slice.messages) {
		if (poisoned.has(message)) continue;
		// Rare, so only here is a message's text read.
		const events = (decodeQueueBody(message.body) as EventsMessage).events.filter((event) => reasons.has(event.id));
		if (events.length === 0) continue;
		try {
			await sendRefused(
				env,
				message,
				tenant,
				events.map((event) => ({ event, reason: reasons.get(event.id)! })),
			);
		} catch (err) {
			console.error("dead-lettering refused events failed; retrying their message", { id: message.id }, err);
			failed.add(message);
		}
	}
}

interface TenantSlice {
	messages: Message<unknown>[];
	/**
	 * Each message's events as a JSON array, cut from the text the producer sent (the consumer
	 * never parses it): cheaper across the RPC than the objects, the aggregator parses and checks it
	 * once, and archives it as it is.
	 */
	json: string[];
}

export async function consumeEvents(batch: MessageBatch<unknown>, env: Env, ctx?: ExecutionContext): Promise<void> {
	countProducer(PIPELINE_WIDE, "consumer_batches", 1);
	ctx?.waitUntil(reportProducerCounters(env));
	const slices = new Map<string, TenantSlice>();
	for (const message of batch.messages) {
		let tenant = packedTenantOf(message.body);
		let json: string;
		if (tenant !== null) json = packedEventsOf(message.body as string, tenant);
		else {
			// Any other form (an object, other JSON text) is decoded and checked here.
			const decoded = decodeQueueBody(message.body);
			const problem = checkEventsMessage(decoded);
			if (problem) {
				await deadLetterPoison(env, message, problem);
				continue;
			}
			const body = decoded as EventsMessage;
			tenant = body.tenant;
			json = JSON.stringify(body.events);
		}
		let slice = slices.get(tenant);
		if (!slice) slices.set(tenant, (slice = { messages: [], json: [] }));
		slice.messages.push(message);
		slice.json.push(json);
	}

	const failed = new Set<Message<unknown>>();
	const poisoned = new Set<Message<unknown>>();
	await Promise.all(
		[...slices].map(async ([tenant, slice]) => {
			let result: IngestResult;
			try {
				result = await env.AGGREGATOR.getByName(tenant).ingest(tenant, { json: slice.json });
			} catch (err) {
				console.error("aggregator ingest failed", { tenant, messages: slice.messages.length }, err);
				for (const message of slice.messages) failed.add(message);
				return;
			}
			// A message that failed the aggregator's guard is dead-lettered (and acked or retried) on its own.
			for (const { index, problem } of result.poison ?? []) {
				const message = slice.messages[index]!;
				poisoned.add(message);
				await deadLetterPoison(env, message, problem);
			}
			if (result.refused.length > 0) await deadLetterRefused(env, tenant, slice, result.refused, failed, poisoned);
		}),
	);
	for (const slice of slices.values()) {
		for (const message of slice.messages) {
			if (poisoned.has(message)) continue;
			if (failed.has(message)) message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
			else message.ack();
		}
	}
}
