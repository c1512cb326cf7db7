// Retries for every transport: the pipeline's one backoff rule, a server's Retry-After honoured,
// and no retry for an answer that will not change (a 4xx other than 429).
import { backoffMs } from "../shared/backoff.js";

export interface RetryPolicy {
	retries: number;
	retryDelay: number;
	maxRetryDelay: number;
}

/** A failed send, with what the retry loop needs to know about it. */
export class SendError extends Error {
	override name = "MeterlineSendError";

	/** The HTTP status, or the one an RPC error names; undefined for a network or queue error. */
	readonly status?: number;
	/** Milliseconds the server asked us to wait. */
	readonly retryAfter?: number;

	constructor(message: string, options: { status?: number; retryAfter?: number; cause?: unknown } = {}) {
		super(message, { cause: options.cause });
		this.status = options.status;
		this.retryAfter = options.retryAfter;
	}

	/** Network errors, 429 and 5xx may pass; any other answer would be the same next time. */
	get retryable(): boolean {
		return this.status === undefined || this.status === 429 || this.status >= 500;
	}
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date; undefined if absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
	if (value === null) return undefined;
	const text = value.trim();
	if (/^\d+$/.test(text)) return Number(text) * 1000;
	const date = Date.parse(text);
	return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `attempt` until it succeeds, it fails for good, or the retries run out; then rethrows the
 * last error. A Retry-After longer than maxRetryDelay ends the retries rather than retry too soon.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: () => Promise<T>): Promise<T> {
	for (let n = 0; ; n++) {
		try {
			return await attempt();
		} catch (err) {
			if (n >= policy.retries || (err instanceof SendError && !err.retryable)) throw err;
			const asked = err instanceof SendError ? err.retryAfter : undefined;
			if (asked !== undefined && asked > policy.maxRetryDelay) throw err;
			// Retry n + 1 waits retryDelay × 2^n, at most maxRetryDelay.
			await sleep(asked ?? backoffMs(n + 1, { baseMs: policy.retryDelay, capMs: policy.maxRetryDelay }));
		}
	}
}
