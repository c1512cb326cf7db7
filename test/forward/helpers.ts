// Forwarding test helpers: destinations made through the API, a fake forward queue that records each
// send with its delay, batches delivered straight to the consumer, and providers stubbed behind fetch.
import { env } from "cloudflare:workers";
import { vi } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { consumeForward, forgetDestinations } from "../../src/forward/consumer";
import { postJson } from "../helpers";

let next = 0;
export function forwardEvent(overrides: Partial<QueuedEvent> = {}): QueuedEvent {
	return { id: `fe-${next++}-${crypto.randomUUID().slice(0, 8)}`, event: "signup", timestamp: Date.UTC(2026, 10, 20, 12), ...overrides };
}

export async function createDestination(readKey: string, body: Record<string, unknown>): Promise<{ id: string } & Record<string, unknown>> {
	const response = await postJson("/v1/destinations", body, readKey);
	if (response.status !== 201) throw new Error(`destination creation failed: ${response.status} ${await response.text()}`);
	return response.json();
}

/** A forward queue that keeps what is sent, with the virtual time each message becomes due. */
export class FakeForwardQueue {
	readonly sent: { body: unknown; dueAt: number; delaySeconds: number }[] = [];
	send(body: unknown, options?: QueueSendOptions): Promise<void> {
		const delaySeconds = options?.delaySeconds ?? 0;
		this.sent.push({ body: structuredClone(body), dueAt: Date.now() + delaySeconds * 1000, delaySeconds });
		return Promise.resolve();
	}
	/** Takes the earliest-due message, or undefined. */
	takeNext(): { body: unknown; dueAt: number; delaySeconds: number } | undefined {
		if (this.sent.length === 0) return undefined;
		const i = this.sent.reduce((best, m, j) => (m.dueAt < this.sent[best]!.dueAt ? j : best), 0);
		return this.sent.splice(i, 1)[0];
	}
}

export interface Outcome {
	acked: number;
	retried: number;
}

/** Runs the real consumer on one batch of bodies, with `queue` as FORWARD. */
export async function consume(queue: FakeForwardQueue, bodies: unknown[], attempts = 1): Promise<Outcome> {
	const outcome = { acked: 0, retried: 0 };
	const messages = bodies.map((body, i) => ({
		id: `m-${next++}-${i}`,
		timestamp: new Date(),
		attempts,
		body,
		ack: () => void outcome.acked++,
		retry: () => void outcome.retried++,
	}));
	const batch = { queue: "meterline-forward", messages, ackAll() {}, retryAll() {} } as unknown as MessageBatch<unknown>;
	await consumeForward(batch, { ...env, FORWARD: queue as unknown as Queue });
	return outcome;
}

export interface SeenRequest {
	url: string;
	headers: Record<string, string>;
	body: string;
	status: number;
}

/**
 * Stubs fetch: `answer` decides each provider request's status (and headers); every request is
 * kept with the answer it got. Requests to the Worker itself never go through fetch here.
 */
export function stubProviders(answer: (url: URL, now: number) => { status: number; headers?: Record<string, string> }): SeenRequest[] {
	const seen: SeenRequest[] = [];
	forgetDestinations();
	vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
		const request = new Request(input, init);
		const { status, headers } = answer(new URL(request.url), Date.now());
		seen.push({ url: request.url, headers: Object.fromEntries(request.headers), body: await request.text(), status });
		return new Response(status === 200 ? "{}" : "unavailable", { status, headers });
	});
	return seen;
}

/** The event ids a seen request carried, for each provider's body shape. */
export function eventIdsOf(request: SeenRequest): string[] {
	const body = JSON.parse(request.body) as Record<string, unknown> | Record<string, unknown>[];
	if (Array.isArray(body)) return body.map((e) => (e.properties as Record<string, string>).$insert_id!);
	if (Array.isArray(body.batch)) return (body.batch as Record<string, string>[]).map((e) => e.uuid ?? e.messageId!);
	return (body.events as Record<string, string>[]).map((e) => e.insert_id ?? e.id!);
}
