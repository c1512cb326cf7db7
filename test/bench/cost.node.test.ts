// The cost arithmetic against a hand-computed example.
import { describe, expect, it } from "vitest";
import { costPerMillionEvents, durableObjectGbSeconds } from "../../src/bench/cost";

describe("costPerMillionEvents", () => {
	it("prices 1,000 events at client batch size 100 by hand", () => {
		// 10 requests of 100 events: 10 Worker requests + 1 consumer batch = 11 requests;
		// 10 queue messages of one 64 KB chunk each → 30 operations; 1 RPC + 2 alarms = 3 DO requests;
		// 3,100 SQLite rows, 40 D1 rows, 40 data points.
		const cost = costPerMillionEvents({
			events: 1000,
			workerRequests: 11,
			queueMessages: 10,
			queueChunks: 10,
			aggregatorRpcs: 1,
			alarms: 2,
			sqliteRowsWritten: 3100,
			d1RowsWritten: 40,
			analyticsPoints: 40,
		});
		// × 1000 to a million events, then × price per unit:
		expect(cost.perMillionEvents.workerRequests).toBeCloseTo((11_000 * 0.3) / 1e6, 12); // $0.0033
		expect(cost.perMillionEvents.queueOperations).toBeCloseTo((30_000 * 0.4) / 1e6, 12); // $0.012
		expect(cost.perMillionEvents.durableObjectRequests).toBeCloseTo((3_000 * 0.15) / 1e6, 12); // $0.00045
		expect(cost.perMillionEvents.durableObjectRowsWritten).toBeCloseTo(3.1, 12); // 3.1M rows × $1/M
		expect(cost.perMillionEvents.d1RowsWritten).toBeCloseTo(0.04, 12);
		expect(cost.perMillionEvents.analyticsDataPoints).toBeCloseTo(0.01, 12);
		expect(cost.totalPerMillionEvents).toBeCloseTo(0.0033 + 0.012 + 0.00045 + 3.1 + 0.04 + 0.01, 12);
		expect(cost.dominant).toBe("durableObjectRowsWritten");
	});

	it("prices measured CPU and modelled Durable Object duration by hand", () => {
		// 50 ms of CPU for 1,000 events and 2 D1 flushes: (50 + 2 × 50 ms) × 128 MB = 0.0192 GB-s.
		expect(durableObjectGbSeconds(50, 2)).toBeCloseTo(0.0192, 12);
		const cost = costPerMillionEvents({
			events: 1000,
			workerRequests: 0,
			queueMessages: 0,
			queueChunks: 0,
			aggregatorRpcs: 0,
			alarms: 0,
			sqliteRowsWritten: 0,
			d1RowsWritten: 0,
			analyticsPoints: 0,
			cpuMs: 50,
			durableObjectGbSeconds: 0.0192,
		});
		expect(cost.perMillionEvents.workerCpu).toBeCloseTo((50_000 * 0.02) / 1e6, 12); // $0.001
		expect(cost.perMillionEvents.durableObjectDuration).toBeCloseTo((19.2 * 12.5) / 1e6, 12); // $0.00024
		expect(cost.totalPerMillionEvents).toBeCloseTo(0.001 + 0.00024, 12);
		expect(cost.dominant).toBe("workerCpu");
	});
});
