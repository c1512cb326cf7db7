// What each rate card measured: per customer and subscription segment, the built-in usage of a
// SKU (its late usage for closed months included, booked where it arrived) or a meter's value,
// read live (D1 plus what the aggregator has not flushed yet), exactly, in micro-units.
import { liveReports, livePackedRows } from "../read/live.js";
import { meterMicros } from "../read/meter-query.js";
import { ADJUSTMENT_ROLLUP, METER_ROLLUP, RowMerge, USAGE_ROLLUP, type RollupRow } from "../sinks/rollups.js";
import type { MeterAggregation } from "../meters/model.js";
import type { RateCardTarget } from "./plan-model.js";

/** A rate card's meter as its plan version resolved it: the id outlives a reuse of the slug. */
export interface ResolvedMeter {
	id: number;
	aggregation: MeterAggregation;
}

/** One thing to measure: a rate card's target for a set of customers over [from, to). */
export interface Measure {
	target: RateCardTarget;
	meter?: ResolvedMeter;
}

export interface Measured {
	/** Micro-units; a negative meter value bills as zero, so the caller clamps. */
	micros: bigint;
	/** A UNIQUE_COUNT past its exact limit is an estimate (HyperLogLog). */
	estimated: boolean;
}

/** Measured quantities by customer, then by measure key (see measureKey). */
export type Quantities = Map<string, Map<string, Measured>>;

export function measureKey(target: RateCardTarget): string {
	return "meter" in target ? `meter:${target.meter}` : `sku:${JSON.stringify([target.sku, target.unit ?? null])}`;
}

/**
 * Measures every target for every customer over one range [from, to): one live usage read for the
 * SKU targets, and one per meter. Customers without usage get no entry (zero). With
 * `adjustmentsFrom`, the SKU targets also count the late usage booked in [adjustmentsFrom, to).
 */
export async function measure(
	env: Env,
	tenant: string,
	customers: readonly string[],
	measures: readonly Measure[],
	from: string,
	to: string,
	adjustmentsFrom: string | null,
): Promise<Quantities> {
	const quantities: Quantities = new Map();
	const add = (customer: string, key: string, micros: bigint, estimated = false) => {
		let byKey = quantities.get(customer);
		if (!byKey) quantities.set(customer, (byKey = new Map()));
		const before = byKey.get(key);
		byKey.set(key, { micros: (before?.micros ?? 0n) + micros, estimated: (before?.estimated ?? false) || estimated });
	};
	const skuTargets = measures.flatMap((m) => ("sku" in m.target ? [m.target] : []));
	const reads: Promise<void>[] = [];
	if (skuTargets.length > 0) {
		const where = { customer: [...customers] };
		const addUsage = ({ reports }: { reports: Record<string, unknown>[][] }) => {
			for (const row of reports.flat()) {
				for (const target of skuTargets) {
					if (row.sku !== target.sku || (target.unit !== undefined && row.unit !== target.unit)) continue;
					add(row.customer as string, measureKey(target), BigInt(row.micros as string));
				}
			}
		};
		const keys = ["customer", "sku", "unit"];
		reads.push(liveReports(env, tenant, [{ spec: USAGE_ROLLUP, keys, where }], from, to, "month").then(addUsage));
		// Late usage for a closed month is booked at the start of the month it arrived in.
		if (adjustmentsFrom !== null)
			reads.push(liveReports(env, tenant, [{ spec: ADJUSTMENT_ROLLUP, keys, where }], adjustmentsFrom, to, "month").then(addUsage));
	}
	const meters = new Map<number, { meter: ResolvedMeter; key: string }>();
	for (const m of measures) if (m.meter) meters.set(m.meter.id, { meter: m.meter, key: measureKey(m.target) });
	for (const { meter, key } of meters.values()) {
		reads.push(
			livePackedRows(env, tenant, METER_ROLLUP, from, to, { meter: meter.id, customer: [...customers] }).then((rows) => {
				const byCustomer = new Map<string, RollupRow>();
				const merging = new RowMerge(METER_ROLLUP);
				for (const row of rows) {
					const merged = byCustomer.get(row.customer as string);
					if (merged) merging.into(merged, row);
					else byCustomer.set(row.customer as string, { ...row });
				}
				merging.finish();
				for (const [customer, row] of byCustomer) {
					const { micros, estimated } = meterMicros(meter.aggregation, row);
					if (micros !== null) add(customer, key, micros, estimated);
				}
			}),
		);
	}
	await Promise.all(reads);
	return quantities;
}
