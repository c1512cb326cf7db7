// The one Analytics Engine writer: a fixed column map and one point builder, for dashboards.
import { MICROS_PER_UNIT } from "../event/quantity.js";
import { EVENT_ROLLUP, USAGE_ROLLUP, type RollupRow, type RollupSpec } from "./rollups.js";

/** Analytics Engine accepts at most this many data points per Worker invocation. */
export const MAX_POINTS_PER_INVOCATION = 250;

/**
 * Logical field → Analytics Engine column. Query with e.g.
 * `SELECT blob2 AS sku, SUM(double2) FROM meterline_events WHERE index1 = 'acme' AND blob1 = 'usage'`.
 */
export const POINT_COLUMNS = {
	kind: "blob1", // "usage" | "event" | "adjustment"
	name: "blob2", // sku or event name
	unit: "blob3", // usage unit ("" for events)
	period: "blob4", // ISO start of the hour (usage), minute (event) or booking month (adjustment)
	closedPeriod: "blob5", // the closed month an adjustment is for ("" otherwise)
	customer: "blob6", // the customer of usage and adjustments ("" for none, and for events)
	count: "double1", // events in the row
	quantity: "double2", // usage quantity in units (approximate: D1 holds the exact sum)
	errors: "double3",
	durationCount: "double4",
	durationSum: "double5",
	durationMin: "double6",
	durationMax: "double7",
} as const;

export type DataPoint = Required<Pick<AnalyticsEngineDataPoint, "indexes" | "blobs" | "doubles">>;

/** Builds the data point for one flushed rollup row; the tenant is the only index. */
export function toDataPoint(tenant: string, spec: RollupSpec, row: RollupRow): DataPoint {
	const num = (column: string) => Number(row[column] ?? 0);
	if (spec === EVENT_ROLLUP) {
		return {
			indexes: [tenant],
			blobs: ["event", String(row.event), "", String(row.minute), "", ""],
			doubles: [num("count"), 0, num("errors"), num("duration_count"), num("duration_sum"), num("duration_min"), num("duration_max")],
		};
	}
	const usage = spec === USAGE_ROLLUP;
	return {
		indexes: [tenant],
		blobs: [
			usage ? "usage" : "adjustment",
			String(row.sku),
			String(row.unit),
			String(usage ? row.hour : row.booked),
			usage ? "" : String(row.period),
			String(row.customer ?? ""),
		],
		doubles: [num("events"), num("micros") / MICROS_PER_UNIT, 0, 0, 0, 0, 0],
	};
}

/** Writes up to the per-invocation limit; returns how many were written. */
export function writeDataPoints(dataset: AnalyticsEngineDataset, points: DataPoint[]): number {
	const count = Math.min(points.length, MAX_POINTS_PER_INVOCATION);
	for (let i = 0; i < count; i++) dataset.writeDataPoint(points[i]);
	return count;
}
