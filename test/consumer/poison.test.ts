// Undecodable queue bodies: each goes straight to the dead-letter queue with its reason and is
// acked (retrying it could never help), while the rest of its batch is still aggregated. Only a
// refused dead-letter send makes the consumer retry the message.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import superjson from "superjson";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { eventsPrefix, packMessages } from "../../src/event/pack";
import { RecordingQueue, uniqueTenantId } from "../helpers";
import {
	deadLetterRows,
	deliver,
	eventsMessage,
	QUEUE,
	queuedEvent,
	rawMessage,
	seenIds,
	type DeadLetterRow,
	type TestMessage,
} from "./helpers";

afterEach(() => {
	vi.restoreAllMocks();
});

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A body as its dead letter keeps it: JSON text as its value (as replay sends it), anything else as it came. */
function kept(body: unknown): unknown {
	if (typeof body !== "string") return body;
	try {
		return JSON.parse(body);
	} catch {
		return body;
	}
}

/** The dead_letters row the DLQ consumer stores for a poison message the events consumer sent. */
function deadLetterOf(message: TestMessage, tenant: string | null, reason: string): DeadLetterRow {
	return {
		id: message.id,
		tenant,
		body: superjson.stringify(kept(message.body)),
		error: `undecodable message: ${reason}`,
		attempts: message.attempts,
		first_failed_at: message.timestamp.toISOString(),
		last_failed_at: expect.stringMatching(ISO_INSTANT) as unknown as string,
		replayed_at: null,
	};
}

/** Waits for the real dead-letter queue's consumer to store `count` rows whose ids start with `prefix`. */
async function storedDeadLetters(prefix: string, count: number): Promise<DeadLetterRow[]> {
	return vi.waitFor(
		async () => {
			const rows = await deadLetterRows(prefix);
			expect(rows).toHaveLength(count);
			return rows;
		},
		{ timeout: 10_000, interval: 50 },
	);
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

describe("poison messages", () => {
	it("dead-letters each undecodable message with its reason, acks it, and aggregates the rest of the batch", async () => {
		const tenant = uniqueTenantId();
		// Message ids are unique per test: dead_letters keys its rows by message id.
		const id = (name: string) => `${tenant}/${name}`;
		const good = (eventId: string) => queuedEvent({ id: eventId });
		const poison: [TestMessage, string | null, string][] = [
			[rawMessage(id("text"), "not an events message", 1), null, "not JSON text"],
			[rawMessage(id("json-text"), JSON.stringify("an events message"), 1), null, "not a v1 events message"],
			[
				rawMessage(
					id("text-bad-event"),
					JSON.stringify({ v: 1, tenant, events: [good("tb-ok"), { ...good("tb-bad"), timestamp: 1.5 }] }),
					2,
				),
				tenant,
				"events[1].timestamp: must be epoch milliseconds",
			],
			// The producer's form with a broken events array: the consumer does not read it, its aggregator refuses it.
			[rawMessage(id("packed-broken"), `${eventsPrefix(tenant)}[{"id":]}`, 3), tenant, "not JSON text"],
			[rawMessage(id("null"), null, 2), null, "not a v1 events message"],
			[rawMessage(id("v2"), { v: 2, tenant, events: [good("v2-ok")] }, 3), tenant, "not a v1 events message"],
			[rawMessage(id("no-tenant"), { v: 1, tenant: "", events: [good("nt-ok")] }, 4), "", "missing tenant"],
			[rawMessage(id("events-not-array"), { v: 1, tenant, events: "ok-3" }, 5), tenant, "events is not an array"],
			[
				rawMessage(
					id("numeric-id"),
					{ v: 1, tenant, events: [{ id: 7, event: "api_call", timestamp: Date.UTC(2026, 10, 20) }] },
					6,
				),
				tenant,
				"events[0].id: must be a string",
			],
			[
				rawMessage(id("float-timestamp"), { v: 1, tenant, events: [good("ft-ok"), { ...good("ft-bad"), timestamp: 1.5 }] }, 7),
				tenant,
				"events[1].timestamp: must be epoch milliseconds",
			],
			[
				rawMessage(
					id("text-micros"),
					{ v: 1, tenant, events: [{ ...good("tm"), usage: { sku: "tokens", unit: "token", micros: "100" } }] },
					8,
				),
				tenant,
				"events[0].usage.micros: must be whole micro-units within range",
			],
			[
				rawMessage(id("no-unit"), { v: 1, tenant, events: [{ ...good("nu"), usage: { sku: "tokens", micros: 100 } }] }, 12),
				tenant,
				"events[0].usage.unit: must be a string",
			],
		];
		const valid = eventsMessage(id("valid"), tenant, [good("ok-1"), good("ok-2")], 1);
		// As the producer sends it: the message's JSON text.
		const validText = rawMessage(id("valid-text"), packMessages(tenant, [good("ok-3")])[0]!.text, 1);
		const messages = poison.map(([message]) => message);

		const result = await deliver([...messages.slice(0, 3), valid, ...messages.slice(3), validText]);
		const ids = messages.map((message) => message.id);
		const packedForm = new Set([id("text-bad-event"), id("packed-broken")]);

		// Poison messages are acked as the batch is read; the valid one once its aggregator has it.
		expect(result).toEqual({
			outcome: "ok",
			ackAll: false,
			retryBatch: { retry: false },
			// The consumer reads no message in the producer's packed form: its aggregator finds those
			// poison, so they are acked after the others.
			explicitAcks: [
				...ids.filter((name) => !packedForm.has(name)),
				...ids.filter((name) => packedForm.has(name)),
				valid.id,
				validText.id,
			],
			retryMessages: [],
		});
		// Only the valid message reached the aggregator: a bad message is refused whole, even its good events.
		expect(await seenIds(tenant)).toEqual(["ok-1", "ok-2", "ok-3"]);
		const rows = await storedDeadLetters(`${tenant}/`, poison.length);
		expect(rows).toEqual(poison.map(([message, owner, reason]) => deadLetterOf(message, owner, reason)).sort(byId));
		for (const [message] of poison) {
			const row = rows.find((candidate) => candidate.id === message.id)!;
			expect(superjson.parse(row.body)).toEqual(kept(message.body));
			expect(Date.parse(row.last_failed_at)).toBeGreaterThanOrEqual(Date.parse(row.first_failed_at));
		}
	});

	it("dead-letters a message whose performance fields are not numbers", async () => {
		// The aggregator sums and compares durations as numbers; text would be stored in the
		// rollups (and flushed to D1) as a string, so such a body is as undecodable as bad usage.
		const tenant = uniqueTenantId();
		const duration = rawMessage(
			`${tenant}/text-duration`,
			{ v: 1, tenant, events: [{ ...queuedEvent({ id: "p1" }), performance: { duration: "slow" } }] },
			1,
		);
		const status = rawMessage(
			`${tenant}/text-status`,
			{ v: 1, tenant, events: [{ ...queuedEvent({ id: "p2" }), performance: { statusCode: "503" } }] },
			2,
		);

		const result = await deliver([duration, status]);

		expect(result.explicitAcks).toEqual([duration.id, status.id]);
		expect(result.retryMessages).toEqual([]);
		expect(await seenIds(tenant)).toEqual([]);
		expect(await storedDeadLetters(`${tenant}/`, 2)).toEqual([
			deadLetterOf(duration, tenant, "events[0].performance.duration: must be a number of milliseconds from 0 to 86400000"),
			deadLetterOf(status, tenant, "events[0].performance.statusCode: must be an integer 100-599"),
		]);
	});

	it("retries a poison message with backoff when the dead-letter queue refuses it, and dead-letters it on redelivery", async () => {
		const tenant = uniqueTenantId();
		const body = { v: 1, tenant, events: [{ ...queuedEvent({ id: "p" }), timestamp: "yesterday" }] };
		// The real dead-letter queue behind a wrapper that refuses the first send.
		const deadLetters = new RecordingQueue({ fails: (n) => n === 1, target: env.DEAD_LETTERS });
		// Jitter at its minimum: delay = max(1, step / 2), step = 2 s × 2^(attempts − 1).
		vi.spyOn(Math, "random").mockReturnValue(0);
		const deliverOnce = async (attempts: number) => {
			const batch = createMessageBatch(QUEUE, [rawMessage(`${tenant}/refused`, body, attempts)]);
			// getQueueResult drops a retry's options, so the message's own retry() is watched for them.
			const retry = vi.spyOn(batch.messages[0]!, "retry");
			const ctx = createExecutionContext();
			await worker.queue(batch, { ...env, DEAD_LETTERS: deadLetters }, ctx);
			return { result: await getQueueResult(batch, ctx), retries: retry.mock.calls };
		};

		const first = await deliverOnce(3);

		expect(first.result.explicitAcks).toEqual([]);
		expect(first.result.retryMessages).toEqual([{ msgId: `${tenant}/refused` }]);
		expect(first.retries).toEqual([[{ delaySeconds: 4 }]]);
		expect(await deadLetterRows(`${tenant}/`)).toEqual([]);

		const second = await deliverOnce(4);

		expect(second.result.explicitAcks).toEqual([`${tenant}/refused`]);
		expect(second.result.retryMessages).toEqual([]);
		expect(second.retries).toEqual([]);
		expect([deadLetters.failed, deadLetters.delivered]).toEqual([1, 1]);
		const [row] = await storedDeadLetters(`${tenant}/`, 1);
		expect(row).toEqual(
			deadLetterOf(rawMessage(`${tenant}/refused`, body, 4), tenant, "events[0].timestamp: must be epoch milliseconds"),
		);
		expect(await seenIds(tenant)).toEqual([]);
	});
});
