// nextAlarm(): the pure rule for when the aggregator's alarm fires next.
import { describe, expect, it } from "vitest";
import { nextAlarm, type AlarmInputs } from "../../src/aggregator/alarm";

const NOW = 1_000_000;

/** Nothing to do at NOW, overridden by what a case needs. */
function idle(overrides: Partial<AlarmInputs> = {}): AlarmInputs {
	return {
		now: NOW,
		sealed: false,
		openRows: 0,
		maxRows: 1000,
		intervalMs: 10_000,
		retryAt: 0,
		outboxPending: false,
		outboxRetryAt: 0,
		spillPending: false,
		respoolRetryAt: 0,
		quarantinePending: false,
		quarantineRetryAt: 0,
		healthPending: false,
		healthRetryAt: 0,
		pruneAt: null,
		compactAt: null,
		compactRetryAt: 0,
		archiveAt: null,
		...overrides,
	};
}

describe("nextAlarm", () => {
	it("is null when no work remains", () => {
		expect(nextAlarm(idle())).toBeNull();
	});

	it("waits the flush interval for open rows, and not at all once they reach FLUSH_MAX_ROWS", () => {
		expect(nextAlarm(idle({ openRows: 1 }))).toBe(NOW + 10_000);
		expect(nextAlarm(idle({ openRows: 1000 }))).toBe(NOW);
	});

	it("never runs a flush before its backoff ends", () => {
		expect(nextAlarm(idle({ sealed: true, retryAt: NOW + 4_000 }))).toBe(NOW + 4_000);
		expect(nextAlarm(idle({ openRows: 1000, retryAt: NOW + 4_000 }))).toBe(NOW + 4_000);
		expect(nextAlarm(idle({ sealed: true, retryAt: NOW - 1 }))).toBe(NOW);
	});

	it.each([
		["the outbox", { outboxPending: true, outboxRetryAt: NOW + 5_000 }],
		["a spill", { spillPending: true, respoolRetryAt: NOW + 5_000 }],
		["quarantined rows", { quarantinePending: true, quarantineRetryAt: NOW + 5_000 }],
		["a health report", { healthPending: true, healthRetryAt: NOW + 5_000 }],
		["compaction", { compactAt: NOW + 1, compactRetryAt: NOW + 5_000 }],
	] as const)("waits out %s's backoff, then runs it at once", (_, backingOff) => {
		expect(nextAlarm(idle(backingOff))).toBe(NOW + 5_000);
	});

	it("is due when the archive is, or now when that has passed", () => {
		expect(nextAlarm(idle({ archiveAt: NOW + 60_000 }))).toBe(NOW + 60_000);
		expect(nextAlarm(idle({ archiveAt: NOW - 1 }))).toBe(NOW);
		expect(nextAlarm(idle({ archiveAt: NOW + 60_000, openRows: 1 }))).toBe(NOW + 10_000);
	});

	it("is due at the prune and compaction times, or now when they have passed", () => {
		expect(nextAlarm(idle({ pruneAt: NOW + 60_000 }))).toBe(NOW + 60_000);
		expect(nextAlarm(idle({ compactAt: NOW + 30_000 }))).toBe(NOW + 30_000);
		expect(nextAlarm(idle({ pruneAt: NOW - 5 }))).toBe(NOW);
	});

	it("takes the earliest of everything due", () => {
		expect(nextAlarm(idle({ openRows: 5, pruneAt: NOW + 60_000, outboxPending: true, outboxRetryAt: NOW + 3_000 }))).toBe(NOW + 3_000);
	});
});
