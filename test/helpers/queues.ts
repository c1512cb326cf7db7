// A stand-in for a queue binding that records every send and delegates to the real local queue,
// optionally held behind a gate or failing chosen calls; and the hand-made promise that gates it.
import { env } from "cloudflare:workers";
import type { EventsMessage, QueuedEvent } from "../../src/event/model";
import { InjectedFault } from "../aggregator/fixtures";

/** A promise the test resolves by hand. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
	let resolve!: () => void;
	const promise = new Promise<void>((r) => (resolve = r));
	return { promise, resolve };
}

export interface RecordingQueueOptions {
	/** Whether call n (from 1) fails; by default none does. */
	fails?: (call: number) => boolean;
	/** A failing call sends for real first and then throws: the queue has the messages but the sender believes it failed (a lost acknowledgement). */
	failAfterSend?: boolean;
	/** Held before each real send until it resolves. */
	gate?: Promise<void>;
	/** The real queue sends go to; env.EVENTS by default. */
	target?: Queue;
}

/**
 * Wraps a real local queue: records the message bodies of every send or sendBatch call, then
 * delegates, after the optional gate, to the real queue. A call chosen by `fails` throws instead,
 * or, with `failAfterSend`, throws after its real send.
 */
export class RecordingQueue implements Queue {
	/** Message bodies per send or sendBatch call, failed ones included, recorded when the call starts. */
	readonly calls: EventsMessage[][] = [];
	/** Calls whose real send resolved. */
	delivered = 0;
	/** Calls that threw to the sender: injected failures, lost acknowledgements and real sends that threw. */
	failed = 0;

	private readonly fails: (call: number) => boolean;
	private readonly failAfterSend: boolean;
	private readonly gate: Promise<void>;
	private readonly target: Queue;

	constructor(options: RecordingQueueOptions = {}) {
		this.fails = options.fails ?? (() => false);
		this.failAfterSend = options.failAfterSend ?? false;
		this.gate = options.gate ?? Promise.resolve();
		this.target = options.target ?? env.EVENTS;
	}

	static failingFirst(times: number): RecordingQueue {
		return new RecordingQueue({ fails: (n) => n <= times });
	}

	static failingAfter(successes: number): RecordingQueue {
		return new RecordingQueue({ fails: (n) => n > successes });
	}

	static alwaysFailing(): RecordingQueue {
		return new RecordingQueue({ fails: () => true });
	}

	/** Sends every call for real, but reports the first `times` as failed. */
	static losingFirstAcks(times: number): RecordingQueue {
		return new RecordingQueue({ fails: (n) => n <= times, failAfterSend: true });
	}

	metrics(): Promise<QueueMetrics> {
		return this.target.metrics();
	}

	send(body: unknown, options?: QueueSendOptions): Promise<QueueSendResponse> {
		return this.forward([body], () => this.target.send(body, options));
	}

	sendBatch(messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions): Promise<QueueSendBatchResponse> {
		const list = [...messages];
		return this.forward(
			list.map((message) => message.body),
			() => this.target.sendBatch(list, options),
		);
	}

	/** Every message body sent, failed calls included, in order. */
	get messages(): EventsMessage[] {
		return this.calls.flat();
	}

	/** The events call n (from 1) carried, whether it failed or not. */
	eventsOfCall(n: number): QueuedEvent[] {
		return this.calls[n - 1]!.flatMap((body) => body.events);
	}

	private async forward<T>(bodies: unknown[], send: () => Promise<T>): Promise<T> {
		this.calls.push(bodies.map((body) => structuredClone(body) as EventsMessage));
		const fail = this.fails(this.calls.length);
		if (fail && !this.failAfterSend) {
			this.failed++;
			throw new InjectedFault("queue unavailable");
		}
		await this.gate;
		let result: T;
		try {
			result = await send();
		} catch (err) {
			this.failed++;
			throw err;
		}
		this.delivered++;
		if (fail) {
			this.failed++;
			throw new InjectedFault("queue acknowledgement lost");
		}
		return result;
	}
}
