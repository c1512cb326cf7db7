// A frozen clock for tests: only Date is faked, and timers stay real. The test, the Worker and
// its Durable Objects share one isolate, so they all read the same frozen time.
import { afterEach, beforeEach, vi } from "vitest";

/** Freezes Date at `at`; returns it. */
export function freezeClockAt(at: number): number {
	vi.useFakeTimers({ toFake: ["Date"], now: at });
	return at;
}

/** Moves the frozen Date forward by `ms`; returns the new now. */
export function advanceClock(ms: number): number {
	vi.setSystemTime(Date.now() + ms);
	return Date.now();
}

/**
 * Freezes Date with `freeze` before each test of the calling file or describe block, and puts back
 * real timers and every mock after it. The returned clock's `start` is the running test's frozen now.
 */
export function useFrozenClock(freeze: () => number): { readonly start: number } {
	const clock = { start: 0 };
	beforeEach(() => {
		clock.start = freeze();
	});
	afterEach(() => {
		vi.useRealTimers();
		vi.restoreAllMocks();
	});
	return clock;
}
