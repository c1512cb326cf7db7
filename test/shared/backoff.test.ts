// backoffMs: the one backoff rule, doubling from a base to a cap, optionally jittered into [½, 1].
import { describe, expect, it } from "vitest";
import { backoffMs } from "../../src/shared/backoff";

const POLICY = { baseMs: 1_000, capMs: 10_000 };

describe("backoffMs", () => {
	it.each([
		[1, 1_000],
		[2, 2_000],
		[3, 4_000],
		[4, 8_000],
		[5, 10_000],
		[60, 10_000],
	])("waits base × 2^(attempt − 1), capped: attempt %i → %i ms", (attempt, ms) => {
		expect(backoffMs(attempt, POLICY)).toBe(ms);
	});

	it("treats an attempt below 1 as the first", () => {
		expect([0, -5, 0.5].map((attempt) => backoffMs(attempt, POLICY))).toEqual([1_000, 1_000, 1_000]);
	});

	it("jitters into [½, 1] of the step", () => {
		const jittered = { ...POLICY, jitter: true };
		expect([0, 0.5, 1].map((random) => backoffMs(3, jittered, () => random))).toEqual([2_000, 3_000, 4_000]);
		expect(backoffMs(9, jittered, () => 0)).toBe(5_000);
	});

	it("grows by another factor when given one", () => {
		// The producer's sendBatch retries: 50, 200, 800 ms.
		expect([1, 2, 3, 4].map((attempt) => backoffMs(attempt, { baseMs: 50, capMs: 800, factor: 4 }))).toEqual([50, 200, 800, 800]);
	});
});
