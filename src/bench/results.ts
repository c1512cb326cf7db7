// The shape of src/bench/results.json: the run's context and every figure, by measurement.
import type { AggregatorScaleResult } from "./aggregator-scale.ts";
import type { ArchiveResult } from "./archive.ts";
import type { ClientResult } from "./client.ts";
import type { CostBreakdown, CostLine, Price } from "./cost.ts";
import type { EndToEndResult } from "./e2e.ts";
import type { FreshnessResult } from "./freshness.ts";
import type { IngestResult } from "./ingest.ts";
import type { MetersResult } from "./meters.ts";
import type { OperationsResult } from "./operations.ts";

export const MEASUREMENTS = ["ingest", "e2e", "freshness", "operations", "cost", "client", "aggregator", "meters", "archive"] as const;
export type Measurement = (typeof MEASUREMENTS)[number];

export interface CostResult {
	scenarios: ({ batch: number } & CostBreakdown)[];
	prices: Record<CostLine, Price>;
	peers: Record<string, { usdFrom: number; usdTo: number; source: string }>;
}

export interface Goal {
	name: string;
	target: string;
	actual: string;
	met: boolean;
	/** Where a goal is missed: what holds it back, from the figures. */
	bottleneck?: string;
}

export interface BenchResults {
	schema: 1;
	mode: "quick" | "full";
	date: string;
	durationSeconds: number;
	machine: { platform: string; release: string; arch: string; cpuModel: string; cpus: number; memoryGb: number };
	versions: Record<string, string>;
	measurements: {
		ingest?: IngestResult;
		e2e?: EndToEndResult;
		freshness?: FreshnessResult;
		operations?: OperationsResult;
		cost?: CostResult;
		client?: ClientResult;
		aggregator?: AggregatorScaleResult;
		meters?: MetersResult;
		archive?: ArchiveResult;
	};
	/** Measurements that threw, by name. */
	errors: Partial<Record<Measurement, string>>;
	/** Non-2xx answers (and network errors, as status 0) the load saw, by measurement. */
	non2xx: { total: number; byMeasurement: Partial<Record<Measurement, Record<string, number>>> };
	goals: Goal[];
}
