// The cost arithmetic against a hand-computed example.
import { describe, expect, it } from "vitest";
import { costPerMillionEvents } from "./cost";

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
});
