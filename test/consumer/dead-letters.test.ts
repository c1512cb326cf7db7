// The dead-letter consumer while D1 refuses its writes: no dead letter is ever dropped. Each is
// retried with backoff (30 s doubling to 1 h) while more than one retry is left; from delivery
// max_retries on it is re-sent to the real dead-letter queue with what its row must hold, and
// acked only once the queue took it. Once D1 is back every dead letter is stored exactly once.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import superjson from "superjson";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEAD_LETTER_BACKOFF, DEAD_LETTER_MAX_RETRIES, type DeadLetterEnvelope } from "../../src/consumer/dead-letters";
import { packMessages } from "../../src/event/pack";
import worker from "../../src/index";
import { backoffMs } from "../../src/shared/backoff";
import { d1Outage, InjectedFault, uniqueTenantId } from "../helpers";
import { deadLetterRows, queuedEvent, rawMessage, type DeadLetterRow, type TestMessage } from "./helpers";

afterEach(() => {
	vi.restoreAllMocks();
});

const DEAD_LETTER_QUEUE = "meterline-dead-letters";
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MAX_RETRIES_EXHAUSTED = "delivery failed on every retry (max_retries exhausted)";
const FIRST_FAILED_AT = Date.UTC(2026, 10, 20, 8);

/**
 * The real dead-letter queue with each send's delay played by the test: a send is taken at once
 * and recorded with its delay, and reaches the real queue (and its real consumer) when the test
 * calls elapse(), so no test waits minutes. While `refusing`, sends throw as in an outage.
 */
class DelayedDeadLetters {
	readonly sent: { body: unknown; delaySeconds: number | undefined }[] = [];
	refusing = false;
	private held: { body: unknown; options?: QueueSendOptions }[] = [];

	async send(body: unknown, options?: QueueSendOptions): Promise<void> {
		if (this.refusing) throw new InjectedFault("dead-letter queue unavailable");
		this.sent.push({ body: structuredClone(body), delaySeconds: options?.delaySeconds });
		this.held.push({ body, options });
	}

	/** The delays are over: every held message goes to the real dead-letter queue. */
	async elapse(): Promise<void> {
		for (const { body, options } of this.held.splice(0)) await env.DEAD_LETTERS.send(body, { ...options, delaySeconds: 0 });
	}

	get queue(): Queue {
		return this as unknown as Queue;
	}
}

/** Delivers a batch to the Worker's real queue handler with some bindings replaced; reports acks and each retry's delay. */
async function deliverDeadLetters(messages: TestMessage[], bindings: Partial<Env>) {
	const batch = createMessageBatch(DEAD_LETTER_QUEUE, messages);
	// getQueueResult drops a retry's options, so each message's own retry() is watched for them.
	const retries = batch.messages.map((message) => vi.spyOn(message, "retry"));
	const ctx = createExecutionContext();
	await worker.queue(batch, { ...env, ...bindings }, ctx);
	const result = await getQueueResult(batch, ctx);
	return {
		ackAll: result.ackAll,
		acked: result.explicitAcks,
		retried: batch.messages.flatMap((message, i) =>
			retries[i]!.mock.calls.map(([options]) => ({ id: message.id, delaySeconds: options?.delaySeconds })),
		),
	};
}

/** What the events consumer sends for a poison message (its own id, reason, attempts, first failure). */
function envelope(prefix: string, name: string, attempts: number): DeadLetterEnvelope {
	return {
		deadLetter: 1,
		id: `${prefix}/${name}`,
		tenant: prefix,
		reason: "undecodable message: events is not an array",
		attempts,
		firstFailedAt: FIRST_FAILED_AT,
		body: { v: 1, tenant: prefix, events: "none" },
	};
}

/** A message the platform moved here after the events consumer's max_retries: its original body. */
function moved(prefix: string, name: string, attempts: number): TestMessage {
	return rawMessage(`${prefix}/${name}`, { v: 1, tenant: prefix, events: [queuedEvent({ id: `${prefix}-${name}` })] }, attempts);
}

function rowOfEnvelope(sent: DeadLetterEnvelope): DeadLetterRow {
	return {
		id: sent.id,
		tenant: sent.tenant,
		body: superjson.stringify(sent.body),
		error: sent.reason,
		attempts: sent.attempts,
		first_failed_at: new Date(sent.firstFailedAt).toISOString(),
		last_failed_at: expect.stringMatching(ISO_INSTANT) as unknown as string,
		replayed_at: null,
	};
}

function rowOfMoved(message: TestMessage, attempts: number): DeadLetterRow {
	return {
		id: message.id,
		tenant: (message.body as { tenant: string }).tenant,
		body: superjson.stringify(message.body),
		error: MAX_RETRIES_EXHAUSTED,
		attempts,
		first_failed_at: message.timestamp.toISOString(),
		last_failed_at: expect.stringMatching(ISO_INSTANT) as unknown as string,
		replayed_at: null,
	};
}

async function storedDeadLetters(prefix: string, count: number): Promise<DeadLetterRow[]> {
	return vi.waitFor(
		async () => {
			const rows = await deadLetterRows(`${prefix}/`);
			expect(rows).toHaveLength(count);
			return rows;
		},
		{ timeout: 10_000, interval: 50 },
	);
}

describe("dead letters while D1 refuses them", () => {
	it("retries, re-sends on the last retries, never drops one, and stores each exactly once after D1 recovers", async () => {
		// The tests' config runs the dead-letter consumer with max_retries 3: deliveries 1 to 4.
		expect(env.DEAD_LETTER_MAX_RETRIES).toBe("3");
		const prefix = uniqueTenantId("dl");
		const outage = d1Outage();
		const deadLetters = new DelayedDeadLetters();
		const bindings = { DB: outage.db, DEAD_LETTERS: deadLetters.queue };
		vi.spyOn(console, "error").mockImplementation(() => {});
		const e1 = envelope(prefix, "poison-1", 1);
		const e3 = envelope(prefix, "poison-3", 6);
		const first = rawMessage(`${prefix}/dlq-1`, e1, 1);
		const second = moved(prefix, "moved-2", 2);
		const third = rawMessage(`${prefix}/dlq-3`, e3, 3);
		const fourth = moved(prefix, "moved-4", 4);

		const during = await deliverDeadLetters([first, second, third, fourth], bindings);

		// Deliveries 1 and 2 keep two or more retries: retried after 30 s and 60 s. Deliveries 3
		// and 4 (a retry could be the last) are re-sent, delayed 2 and 4 min, and only then acked.
		expect(during).toEqual({
			ackAll: false,
			acked: [third.id, fourth.id],
			retried: [
				{ id: first.id, delaySeconds: 30 },
				{ id: second.id, delaySeconds: 60 },
			],
		});
		const fourthAsEnvelope: DeadLetterEnvelope = {
			deadLetter: 1,
			id: fourth.id,
			tenant: prefix,
			reason: MAX_RETRIES_EXHAUSTED,
			attempts: 4,
			firstFailedAt: fourth.timestamp.getTime(),
			body: fourth.body,
		};
		expect(deadLetters.sent).toEqual([
			{ body: e3, delaySeconds: 120 },
			{ body: fourthAsEnvelope, delaySeconds: 240 },
		]);

		// A re-send the queue refuses is not acked: the message is retried, and re-sent on its last delivery.
		const refusedOnce = moved(prefix, "moved-refused", 3);
		deadLetters.refusing = true;
		expect(await deliverDeadLetters([refusedOnce], bindings)).toEqual({
			ackAll: false,
			acked: [],
			retried: [{ id: refusedOnce.id, delaySeconds: 120 }],
		});
		deadLetters.refusing = false;
		const lastDelivery = { ...refusedOnce, attempts: 4 };
		expect(await deliverDeadLetters([lastDelivery], bindings)).toEqual({ ackAll: false, acked: [refusedOnce.id], retried: [] });
		expect(deadLetters.sent.slice(2)).toEqual([
			{
				body: { ...fourthAsEnvelope, id: refusedOnce.id, body: refusedOnce.body, firstFailedAt: refusedOnce.timestamp.getTime() },
				delaySeconds: 240,
			},
		]);
		// Every write during the outage was refused: nothing is stored yet, nothing was dropped.
		expect(outage.refused).toBe(3);
		expect(await deadLetterRows(`${prefix}/`)).toEqual([]);

		// D1 recovers. The re-sent messages come through the real dead-letter queue and its consumer…
		outage.down = false;
		await deadLetters.elapse();
		expect(await storedDeadLetters(prefix, 3)).toEqual([rowOfMoved(fourth, 4), rowOfMoved(refusedOnce, 4), rowOfEnvelope(e3)]);
		// …and the platform redelivers the two it was retrying.
		expect(
			await deliverDeadLetters(
				[
					{ ...first, attempts: 2 },
					{ ...second, attempts: 3 },
				],
				bindings,
			),
		).toEqual({ ackAll: true, acked: [], retried: [] });

		// Each dead letter once, with its original id, reason, attempts and first failure.
		expect(await deadLetterRows(`${prefix}/`)).toEqual([
			rowOfMoved(second, 3),
			rowOfMoved(fourth, 4),
			rowOfMoved(refusedOnce, 4),
			rowOfEnvelope(e1),
			rowOfEnvelope(e3),
		]);
		expect(deadLetters.sent).toHaveLength(3);
	});

	it("uses the default max_retries when DEAD_LETTER_MAX_RETRIES is unset: retries up to delivery 9, re-sends from 10", async () => {
		const prefix = uniqueTenantId("dl");
		const outage = d1Outage();
		const deadLetters = new DelayedDeadLetters();
		vi.spyOn(console, "error").mockImplementation(() => {});
		const ninth = moved(prefix, "moved-9", 9);
		const tenth = moved(prefix, "moved-10", 10);

		const result = await deliverDeadLetters([ninth, tenth], {
			DB: outage.db,
			DEAD_LETTERS: deadLetters.queue,
			DEAD_LETTER_MAX_RETRIES: undefined,
		});

		expect(DEAD_LETTER_MAX_RETRIES).toBe(10);
		expect(result).toEqual({ ackAll: false, acked: [tenth.id], retried: [{ id: ninth.id, delaySeconds: 3600 }] });
		expect(deadLetters.sent.map((sent) => [(sent.body as DeadLetterEnvelope).id, sent.delaySeconds])).toEqual([[tenth.id, 3600]]);
	});

	it("waits 30 s doubling to a 1 h cap between tries", () => {
		expect(Array.from({ length: 11 }, (_, i) => backoffMs(i + 1, DEAD_LETTER_BACKOFF) / 1000)).toEqual([
			30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600,
		]);
	});
});

describe("a dead letter the producer sent as JSON text", () => {
	it("is stored with its tenant and its body's value, as replay re-sends it", async () => {
		const prefix = uniqueTenantId();
		const body = { v: 1, tenant: prefix, events: [queuedEvent({ id: `${prefix}-text` })] };
		const message = rawMessage(`${prefix}/text`, packMessages(prefix, body.events)[0]!.text, DEAD_LETTER_MAX_RETRIES + 1);

		expect(await deliverDeadLetters([message], {})).toEqual({ ackAll: true, acked: [], retried: [] });

		expect(await storedDeadLetters(prefix, 1)).toEqual([rowOfMoved(rawMessage(message.id, body), DEAD_LETTER_MAX_RETRIES + 1)]);
	});
});
