// retryDelaySeconds: exponential backoff from the delivery count, jittered into [½, 1] of the step,
// and the retry budget it makes with max_retries: over an hour even with the shortest waits.
import { afterEach, describe, expect, it, vi } from "vitest";
import { EVENTS_MAX_RETRIES, retryDelaySeconds } from "../../src/consumer/events-consumer";

afterEach(() => {
	vi.restoreAllMocks();
});

describe("retryDelaySeconds", () => {
	it.each([
		[1, 2],
		[2, 4],
		[3, 8],
		[4, 16],
		[5, 32],
		[6, 64],
		[7, 128],
		[8, 256],
		[9, 512],
		[10, 600],
		[25, 600],
		[1000, 600],
	])("waits the full step at the top of the jitter: attempts %i → %i s", (attempts, seconds) => {
		expect(retryDelaySeconds(attempts, () => 1)).toBe(seconds);
	});

	it.each([
		[1, 1],
		[2, 2],
		[3, 4],
		[8, 128],
		[9, 256],
		[10, 300],
		[50, 300],
	])("waits half the step at the bottom of the jitter: attempts %i → %i s", (attempts, seconds) => {
		expect(retryDelaySeconds(attempts, () => 0)).toBe(seconds);
	});

	it("rounds the jittered step to whole seconds", () => {
		expect([1, 2, 3, 4, 9, 10].map((attempts) => retryDelaySeconds(attempts, () => 0.5))).toEqual([2, 3, 6, 12, 384, 450]);
		expect([1, 3, 5].map((attempts) => retryDelaySeconds(attempts, () => 0.3))).toEqual([1, 5, 21]);
	});

	it("treats a missing or zero delivery count as the first attempt", () => {
		expect(retryDelaySeconds(0, () => 1)).toBe(2);
		expect(retryDelaySeconds(-3, () => 1)).toBe(2);
	});

	it("draws its jitter from Math.random by default", () => {
		const random = vi.spyOn(Math, "random").mockReturnValue(0.5);
		expect(retryDelaySeconds(4)).toBe(12);
		expect(random).toHaveBeenCalledTimes(1);
	});
});

describe("the retry budget", () => {
	/** The waits between the deliveries of a message that fails all 1 + EVENTS_MAX_RETRIES of them. */
	const schedule = (random: number) => Array.from({ length: EVENTS_MAX_RETRIES }, (_, i) => retryDelaySeconds(i + 1, () => random));
	const total = (waits: number[]) => waits.reduce((sum, wait) => sum + wait, 0);

	it("waits at least 5,311 s (1 h 28 min 31 s) before a message is dead-lettered, jitter at its lowest", () => {
		const shortest = schedule(0);
		expect(shortest).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, ...Array<number>(16).fill(300)]);
		expect(total(shortest)).toBe(5_311);
		expect(total(shortest)).toBeGreaterThan(3_600);
	});

	it("waits at most 10,622 s (2 h 57 min 2 s), jitter at its highest", () => {
		const longest = schedule(1);
		expect(longest).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 512, ...Array<number>(16).fill(600)]);
		expect(total(longest)).toBe(10_622);
	});
});
