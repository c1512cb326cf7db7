// Getting accepted events into the queue: retries with backoff inside the waitUntil budget, then
// a spill to the tenant's aggregator, which re-enqueues them from its alarm.
import { PIPELINE_WIDE } from "../sinks/d1/metrics.js";
import type { QueuedEvent } from "../event/model.js";
import { HEALTH_MONITOR } from "../sinks/health-monitor.js";
import { countProducer } from "../sinks/counters.js";
import { groupIntoBatches, packMessages, queueMessage } from "../event/pack.js";
import { backoffMs, type BackoffPolicy } from "../shared/backoff.js";

/** Retries of one sendBatch: after 50, 200 and 800 ms, about 1 s in all, far inside waitUntil's 30 s. */
export const SEND_RETRIES = 3;
export const SEND_BACKOFF: BackoffPolicy = { baseMs: 50, capMs: 800, factor: 4 };

export type Delivery = "enqueued" | "spilled" | "failed";

/**
 * Sends one tenant's events, retrying each sendBatch. With `spill`, events that still could not be
 * sent go to the tenant's aggregator; without it the caller learns of the failure ("failed").
 */
export async function deliverEvents(env: Env, tenant: string, events: QueuedEvent[], spill: boolean): Promise<Delivery> {
	const batches = groupIntoBatches(packMessages(tenant, events));
	for (let i = 0; i < batches.length; i++) {
		const batch = batches[i]!;
		if (await sendWithRetries(env.EVENTS, batch.map(queueMessage))) {
			countProducer(
				tenant,
				"enqueued",
				batch.reduce((n, message) => n + message.body.events.length, 0),
			);
			countProducer(PIPELINE_WIDE, "queue_messages", batch.length);
			countProducer(PIPELINE_WIDE, "queue_send_calls", 1);
			continue;
		}
		const unsent = batches.slice(i).flatMap((rest) => rest.flatMap((message) => message.body.events));
		countProducer(tenant, "enqueue_failures", unsent.length);
		if (!spill) return "failed";
		return spillEvents(env, tenant, unsent);
	}
	return "enqueued";
}

async function sendWithRetries(queue: Queue, messages: MessageSendRequest[]): Promise<boolean> {
	for (let attempt = 0; ; attempt++) {
		try {
			await queue.sendBatch(messages);
			return true;
		} catch (err) {
			if (attempt === SEND_RETRIES) {
				console.error("queue send failed after retries", err);
				return false;
			}
			await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt + 1, SEND_BACKOFF)));
		}
	}
}

async function spillEvents(env: Env, tenant: string, events: QueuedEvent[]): Promise<Delivery> {
	try {
		await env.AGGREGATOR.getByName(tenant).spill(tenant, events);
	} catch (err) {
		// Both the queue and the tenant's aggregator refused: the one place an accepted event can
		// be lost. It is logged with its ids and counted, and the README says so.
		countProducer(tenant, "lost", events.length);
		console.error("LOST: events could be neither enqueued nor spilled", { tenant, ids: events.map((event) => event.id) }, err);
		return "failed";
	}
	try {
		await env.HEALTH.getByName(HEALTH_MONITOR).spilled(tenant, events.length);
	} catch (err) {
		console.error("health monitor unreachable", err);
	}
	return "spilled";
}
