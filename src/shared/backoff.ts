// The one backoff rule every retry in the pipeline and the client uses: steps that grow (double, by
// default) from a base up to a cap, optionally jittered so that retries after a shared outage do
// not all arrive together.

export interface BackoffPolicy {
	/** The wait before the first retry, in milliseconds. */
	baseMs: number;
	/** No wait is longer than this. */
	capMs: number;
	/** Each step is this many times the one before (default 2). */
	factor?: number;
	/** Draw each wait uniformly from [½, 1] of its step. */
	jitter?: boolean;
}

/**
 * The wait before retry `attempt` (1 is the first retry; anything below counts as 1):
 * base × factor^(attempt − 1), at most cap; with jitter, a share in [½, 1] of that step.
 */
export function backoffMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
	const n = Math.max(1, Math.floor(attempt));
	const step = Math.min(policy.capMs, policy.baseMs * (policy.factor ?? 2) ** Math.min(n - 1, 40));
	return policy.jitter ? step * (0.5 + random() / 2) : step;
}
