// The forward consumer: fans each tenant batch out to its destinations, one independent delivery
// each. A destination that fails gets its own retry message (with backoff or its Retry-After), so
// one outage never resends to another destination; past the budget the batch is dead-lettered in D1.
import { TtlCache } from "../shared/ttl-cache.js";
import { checkEventsMessage, decodeQueueBody } from "../event/guard.js";
import type { EventsMessage, QueuedEvent } from "../event/model.js";
import { backoffMs, type BackoffPolicy } from "../shared/backoff.js";
import { isPlainObject } from "../shared/objects.js";
import { insertForwardDeadLetter, listDestinations, recordDelivered, recordFailure } from "../sinks/d1/destinations.js";
import { deliver } from "./deliver.js";
import { openDestination, type Destination } from "./destinations.js";

/** A batch for one destination, on its `attempt`th delivery there (a replayed dead letter starts again at 1). */
export interface ForwardRetry {
	v: 1;
	tenant: string;
	destination: string;
	events: QueuedEvent[];
	attempt: number;
	/** Epoch ms of its first failure. */
	firstFailedAt: number;
}

export type ForwardMessage = EventsMessage | ForwardRetry;

/** Deliveries per destination before a batch is dead-lettered: with FORWARD_BACKOFF, 66 min to 2 h 12 min of retrying. */
export const FORWARD_MAX_ATTEMPTS = 12;
/** 10 s doubling to 30 min, jittered into [½, 1]; FORWARD_RETRY_BASE_MS replaces the base (tests). */
export const FORWARD_BACKOFF: BackoffPolicy = { baseMs: 10_000, capMs: 1_800_000, jitter: true };
/** A Retry-After longer than this is cut to it (a queue delay may be at most 12 h). */
export const RETRY_AFTER_CAP_SECONDS = 3_600;
/** How long an isolate trusts its copy of a tenant's destinations: a new or deleted one takes effect within it. */
export const DESTINATIONS_CACHE_MS = 30_000;

const cache = new TtlCache<Promise<Destination[]>>(DESTINATIONS_CACHE_MS);

/** The tenant's destinations, decrypted, from D1 at most every DESTINATIONS_CACHE_MS. */
function destinationsOf(env: Env, tenant: string, now: number): Promise<Destination[]> {
	const hit = cache.get(tenant, now);
	if (hit) return hit;
	const destinations = listDestinations(env.DB, tenant).then((rows) => {
		if (rows.length === 0) return [];
		if (!env.DESTINATIONS_KEY) throw new Error("DESTINATIONS_KEY is unset: destination secrets cannot be read");
		return Promise.all(rows.map((row) => openDestination(row, env.DESTINATIONS_KEY)));
	});
	cache.set(tenant, destinations, now);
	destinations.catch(() => cache.delete(tenant));
	return destinations;
}

/** Forgets cached destinations (a test, or after a change made in this isolate). */
export function forgetDestinations(tenant?: string): void {
	if (tenant === undefined) cache.clear();
	else cache.delete(tenant);
}

/** The wait before attempt `attempt + 1`: the backoff step, or the provider's Retry-After when longer (capped). */
export function forwardDelaySeconds(env: Env, attempt: number, retryAfterSeconds?: number, random: () => number = Math.random): number {
	const base = Number(env.FORWARD_RETRY_BASE_MS);
	const policy = Number.isFinite(base) && base > 0 ? { ...FORWARD_BACKOFF, baseMs: base } : FORWARD_BACKOFF;
	const backoff = Math.max(1, Math.round(backoffMs(attempt, policy, random) / 1000));
	return Math.min(Math.max(backoff, retryAfterSeconds ?? 0), Math.max(backoff, RETRY_AFTER_CAP_SECONDS));
}

function isRetry(body: unknown): body is ForwardRetry {
	return (
		isPlainObject(body) &&
		typeof body.destination === "string" &&
		Number.isInteger(body.attempt) &&
		(body.attempt as number) >= 1 &&
		typeof body.firstFailedAt === "number"
	);
}

/** The problem with a message body, or null: an events message, or one with a destination and attempt too. */
function checkForwardMessage(body: unknown): string | null {
	if (!isPlainObject(body)) return "not an object";
	const { destination, attempt, firstFailedAt, ...rest } = body;
	if (destination !== undefined && !isRetry(body)) return "a retry needs destination, attempt ≥ 1 and firstFailedAt";
	return checkEventsMessage(destination === undefined ? body : { ...rest });
}

/**
 * Delivers to one destination. Its failure is recorded, then either retried as its own message
 * or dead-lettered; only a failure to do either throws (the caller retries the queue message).
 */
async function deliverTo(env: Env, d: Destination, events: QueuedEvent[], attempt: number, firstFailedAt: number | null): Promise<void> {
	const now = Date.now();
	const result = await deliver(d, events, now);
	const at = new Date(now).toISOString();
	if (result.ok) {
		await recordDelivered(env.DB, d.tenant, d.id, events.length, at).catch((err) =>
			console.error("recording a delivery failed", { id: d.id }, err),
		);
		return;
	}
	const delivered = events.length - result.remaining.length;
	await Promise.all([
		delivered > 0 ? recordDelivered(env.DB, d.tenant, d.id, delivered, at) : undefined,
		recordFailure(env.DB, d.tenant, d.id, result.error, at),
	]).catch((err) => console.error("recording a failed delivery failed", { id: d.id }, err));
	const first = firstFailedAt ?? now;
	if (result.permanent || attempt >= FORWARD_MAX_ATTEMPTS) {
		await insertForwardDeadLetter(
			env.DB,
			{
				tenant: d.tenant,
				destination: d.id,
				events: JSON.stringify(result.remaining),
				error: result.permanent ? `refused by the provider: ${result.error}` : `failed ${attempt} times; last: ${result.error}`,
				attempts: attempt,
				first_failed_at: new Date(first).toISOString(),
				last_failed_at: at,
			},
			result.remaining.length,
		);
		return;
	}
	const retry: ForwardRetry = {
		v: 1,
		tenant: d.tenant,
		destination: d.id,
		events: result.remaining,
		attempt: attempt + 1,
		firstFailedAt: first,
	};
	await env.FORWARD.send(retry, { contentType: "json", delaySeconds: forwardDelaySeconds(env, attempt, result.retryAfterSeconds) });
}

async function handle(env: Env, message: Message<unknown>): Promise<void> {
	const decoded = decodeQueueBody(message.body);
	const problem = checkForwardMessage(decoded);
	if (problem) {
		// Nothing stands behind this queue, and a body that cannot be read can never be delivered.
		console.error("dropping an undecodable forward message", { id: message.id, problem });
		message.ack();
		return;
	}
	const body = decoded as ForwardMessage;
	try {
		const destinations = await destinationsOf(env, body.tenant, Date.now());
		if ("destination" in body) {
			const d = destinations.find((x) => x.id === body.destination);
			// A destination deleted since: its retries have nowhere to go.
			if (d) await deliverTo(env, d, body.events, body.attempt, body.firstFailedAt);
		} else {
			await Promise.all(destinations.map((d) => deliverTo(env, d, body.events, 1, null)));
		}
		message.ack();
	} catch (err) {
		// Rare (D1 or the queue refused): the whole message comes back, and destinations that took it dedupe by event id.
		console.error("forwarding failed; retrying the message", { id: message.id, tenant: body.tenant }, err);
		message.retry({ delaySeconds: forwardDelaySeconds(env, message.attempts) });
	}
}

/** The meterline-forward consumer: every message handled on its own, in parallel. */
export async function consumeForward(batch: MessageBatch<unknown>, env: Env): Promise<void> {
	await Promise.all(batch.messages.map((message) => handle(env, message)));
}
