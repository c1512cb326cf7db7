// One delivery of a batch to one destination, chunk by chunk, and what a failure means for its retry.
import type { QueuedEvent } from "../event/model.js";
import type { Destination } from "./destinations.js";
import { CHUNK_EVENTS, providerRequest } from "./providers.js";

export const REQUEST_TIMEOUT_MS = 10_000;

export type DeliveryResult =
	| { ok: true }
	| {
			ok: false;
			/** The events not delivered: the failed chunk and every one after it. */
			remaining: QueuedEvent[];
			error: string;
			/** The provider's Retry-After, in seconds. */
			retryAfterSeconds?: number;
			/** A 4xx other than 408 and 429: a retry would get the same answer. */
			permanent: boolean;
	  };

/** Retry-After as seconds (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
	if (value === null) return undefined;
	if (/^\s*\d+\s*$/.test(value)) return Number(value);
	const at = Date.parse(value);
	return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Delivers `events` to `d`; a chunk that fails stops the rest, so a retry resends only what was not taken. */
export async function deliver(d: Destination, events: QueuedEvent[], now: number): Promise<DeliveryResult> {
	const size = CHUNK_EVENTS[d.kind];
	for (let start = 0; start < events.length; start += size) {
		const chunk = events.slice(start, start + size);
		const request = await providerRequest(d, chunk, now);
		let response: Response;
		try {
			response = await fetch(request.url, {
				method: "POST",
				headers: request.headers,
				body: request.body,
				signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
			});
		} catch (err) {
			return { ok: false, remaining: events.slice(start), error: `request failed: ${String(err).slice(0, 200)}`, permanent: false };
		}
		const text = (await response.text().catch(() => "")).slice(0, 200);
		if (!response.ok) {
			const status = response.status;
			return {
				ok: false,
				remaining: events.slice(start),
				error: `HTTP ${status}${text ? `: ${text}` : ""}`,
				retryAfterSeconds: parseRetryAfter(response.headers.get("retry-after"), now),
				permanent: status >= 400 && status < 500 && status !== 408 && status !== 429,
			};
		}
	}
	return { ok: true };
}
