// The three ways events leave the client: straight to the queue, over a service binding by RPC,
// or over HTTP. Each splits a batch within Meterline's limits and retries each part.
import { utf8Length } from "../shared/bytes.js";
import { EVENT_LIMITS, type QueuedEvent } from "../event/model.js";
import { groupIntoBatches, packMessages, queueMessage } from "../event/pack.js";
import { parseRetryAfter, SendError, withRetries, type RetryPolicy } from "./retry.js";
import type { FetchLike, MeterlineEvent, Transport } from "./types.js";

/** One event ready to send: its HTTP/RPC form, and its queue form (usage in micro-units). */
export interface Prepared {
	wire: MeterlineEvent;
	queued: QueuedEvent;
}

/** Reports that `events` events were sent, or were lost to `error`. */
export type Settle = (events: number, error?: unknown) => void;

/** Sends prepared events, settling every one of them; never rejects. */
export type Sender = (events: Prepared[], settle: Settle) => Promise<void>;

interface Part {
	events: number;
	send(): Promise<unknown>;
}

/** `{"events":[` and `]}` around an HTTP batch. */
const BODY_ENVELOPE_BYTES = 13;

export function senderFor(transport: Transport, policy: RetryPolicy): Sender {
	const t = transport as unknown as Partial<Record<string, unknown>> | null | undefined;
	if (t && typeof t.tenant === "string" && typeof (t.queue as { sendBatch?: unknown } | undefined)?.sendBatch === "function") {
		const { queue, tenant } = transport as Extract<Transport, { queue: unknown }>;
		return sendParts(policy, (events) =>
			groupIntoBatches(
				packMessages(
					tenant,
					events.map((e) => e.queued),
				),
			).map((batch) => ({
				events: batch.reduce((n, message) => n + message.body.events.length, 0),
				// As the producer sends them: the packed text, which the consumer hands on unread.
				send: () => queue.sendBatch(batch.map(queueMessage)),
			})),
		);
	}
	if (t && typeof t.writeKey === "string" && typeof (t.service as { ingest?: unknown } | undefined)?.ingest === "function") {
		const { service, writeKey } = transport as Extract<Transport, { service: unknown }>;
		// Split by count and by JSON size, as the entrypoint checks both.
		return sendParts(policy, (events) =>
			withinLimits(events.map((e) => JSON.stringify(e.wire))).map(([start, end]) => ({
				events: end - start,
				send: () =>
					service
						.ingest(
							events.slice(start, end).map((e) => e.wire),
							writeKey,
						)
						.catch(rpcError),
			})),
		);
	}
	if (t && typeof t.writeKey === "string" && typeof t.endpoint === "string") {
		return endpointSender(transport as Extract<Transport, { endpoint: unknown }>, policy);
	}
	const error = new TypeError("Meterline transport must be {queue, tenant}, {service, writeKey} or {endpoint, writeKey}");
	return async (events, settle) => settle(events.length, error);
}

/** Sends the parts in order; once one fails for good, it and every later part are lost. */
function sendParts(policy: RetryPolicy, split: (events: Prepared[]) => Part[]): Sender {
	return async (events, settle) => {
		let parts: Part[];
		try {
			parts = split(events);
		} catch (err) {
			settle(events.length, err);
			return;
		}
		for (let i = 0; i < parts.length; i++) {
			try {
				await withRetries(policy, parts[i]!.send);
				settle(parts[i]!.events);
			} catch (err) {
				settle(
					parts.slice(i).reduce((n, part) => n + part.events, 0),
					err,
				);
				return;
			}
		}
	};
}

/**
 * [start, end) ranges of serialized events, each at most maxEventsPerBatch events and, as
 * `{"events":[…]}`, at most maxBodyBytes (a single larger event goes alone, for the server to refuse).
 */
function withinLimits(json: string[]): [number, number][] {
	const ranges: [number, number][] = [];
	let start = 0;
	let bytes = BODY_ENVELOPE_BYTES;
	for (let i = 0; i < json.length; i++) {
		const size = utf8Length(json[i]!);
		const count = i - start;
		if (count > 0 && (count === EVENT_LIMITS.maxEventsPerBatch || bytes + 1 + size > EVENT_LIMITS.maxBodyBytes)) {
			ranges.push([start, i]);
			start = i;
			bytes = BODY_ENVELOPE_BYTES;
		}
		bytes += (i > start ? 1 : 0) + size;
	}
	if (start < json.length) ranges.push([start, json.length]);
	return ranges;
}

/** The entrypoint rejects with "<status> <code>: <message>"; keep the status so 4xx is not retried. */
function rpcError(err: unknown): never {
	const message = err instanceof Error ? err.message : String(err);
	const status = /^([1-5]\d\d) /.exec(message);
	throw status ? new SendError(message, { status: Number(status[1]), cause: err }) : err;
}

function endpointSender(transport: Extract<Transport, { endpoint: unknown }>, policy: RetryPolicy): Sender {
	const url = `${transport.endpoint.replace(/\/+$/, "")}/v1/events`;
	const authorization = `Bearer ${transport.writeKey}`;
	const fetchFn: FetchLike = transport.fetch ?? ((request) => fetch(request));
	const post = async (body: string): Promise<void> => {
		const response = await fetchFn(
			new Request(url, { method: "POST", headers: { authorization, "content-type": "application/json" }, body }),
		);
		if (response.status >= 200 && response.status < 300) {
			await response.arrayBuffer().catch(() => undefined);
			return;
		}
		const text = await response.text().catch(() => "");
		throw new SendError(`POST ${url} answered ${response.status}: ${text.slice(0, 500)}`, {
			status: response.status,
			retryAfter: parseRetryAfter(response.headers.get("retry-after")),
		});
	};
	return sendParts(policy, (events) => {
		// Split by count and by body size, serializing each event once.
		const json = events.map((e) => JSON.stringify(e.wire));
		return withinLimits(json).map(([start, end]): Part => {
			const body = `{"events":[${json.slice(start, end).join(",")}]}`;
			return { events: end - start, send: () => post(body) };
		});
	});
}
