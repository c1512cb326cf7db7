// retryDelaySeconds: exponential backoff from the delivery count, jittered into [½, 1] of the step.
import { afterEach, describe, expect, it, vi } from "vitest";
import { retryDelaySeconds } from "../../src/consumer/events-consumer";

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
		[9, 300],
		[10, 300],
		[1000, 300],
	])("waits the full step at the top of the jitter: attempts %i → %i s", (attempts, seconds) => {
		expect(retryDelaySeconds(attempts, () => 1)).toBe(seconds);
	});

	it.each([
		[1, 1],
		[2, 2],
		[3, 4],
		[8, 128],
		[9, 150],
		[50, 150],
	])("waits half the step at the bottom of the jitter: attempts %i → %i s", (attempts, seconds) => {
		expect(retryDelaySeconds(attempts, () => 0)).toBe(seconds);
	});

	it("rounds the jittered step to whole seconds", () => {
		expect([1, 2, 3, 4, 9].map((attempts) => retryDelaySeconds(attempts, () => 0.5))).toEqual([2, 3, 6, 12, 225]);
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
