// `npm run bench [-- --quick] [-- --only=ingest,client] [-- --out=path]`: starts the pipeline
// locally (workerd through wrangler, fresh state), runs the measurements, prints the report and
// writes every figure to src/bench/results.json.
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { startLocalPipeline, type LocalPipeline } from "../scripts/local-pipeline.ts";
import { measureAggregatorScale } from "./aggregator-scale.ts";
import { measureArchive, type ArchiveResult } from "./archive.ts";
import { measureClient } from "./client.ts";
import { costPerMillionEvents, PEER_PRICES_PER_MILLION_EVENTS, PRICES, type OperationCounts } from "./cost.ts";
import { measureEndToEnd } from "./e2e.ts";
import { measureFreshness } from "./freshness.ts";
import { measureIngest } from "./ingest.ts";
import { measureMeters } from "./meters.ts";
import { measureOperations } from "./operations.ts";
import { progressBar, type Phase } from "./progress.ts";
import { evaluateGoals } from "./goals.ts";
import { renderReport } from "./report.ts";
import { MEASUREMENTS, type BenchResults, type Measurement } from "./results.ts";
import { totalOf } from "./support.ts";

const root = path.resolve(import.meta.dirname, "../..");
export const DEFAULT_OUT = path.join(root, "src/bench/results.json");

/** Sizes of each measurement: the full run fits in 10 minutes on 2 cores, the quick one in about 1. */
const CONFIG = {
	full: {
		ingest: { seconds: 10, connections: 10 },
		e2e: { events: 200_000, senders: 8 },
		freshness: { samples: 40, staggerMs: 400, pollIntervalMs: 100 },
		operations: { events: { 1: 2_000, 100: 50_000 }, senders: 8 },
		client: { rounds: 5, iterations: 300, callsPerIteration: 100 },
		aggregator: { checkpoints: [10_000, 100_000, 1_000_000], senders: 8 },
		meters: { events: 100_000, senders: 8, rounds: 2, queries: 50, hours: 720, eventsPerHour: 4 },
		archive: { events: 100_000, senders: 8, rounds: 3 },
	},
	quick: {
		ingest: { seconds: 2, connections: 10 },
		e2e: { events: 20_000, senders: 8 },
		freshness: { samples: 8, staggerMs: 250, pollIntervalMs: 100 },
		operations: { events: { 1: 500, 100: 10_000 }, senders: 8 },
		client: { rounds: 3, iterations: 100, callsPerIteration: 100 },
		aggregator: { checkpoints: [10_000, 50_000], senders: 8 },
		meters: { events: 10_000, senders: 8, rounds: 2, queries: 10, hours: 720, eventsPerHour: 4 },
		archive: { events: 5_000, senders: 8, rounds: 2 },
	},
} as const;

/** Expected seconds of each measurement, to weight the progress bar. */
const WEIGHTS: Record<"full" | "quick", Record<Exclude<Measurement, "cost"> | "start", number>> = {
	full: { start: 3, client: 17, ingest: 72, e2e: 40, freshness: 30, aggregator: 62, meters: 35, archive: 120, operations: 40 },
	quick: { start: 3, client: 5, ingest: 28, e2e: 6, freshness: 11, aggregator: 4, meters: 10, archive: 35, operations: 12 },
};

const USAGE = `Usage: npm run bench [-- options]
  --quick          a run of about a minute (CI smoke test)
  --only=a,b       run only these measurements: ${MEASUREMENTS.join(", ")}
  --out=path       where to write the results (default src/bench/results.json)`;

function versionOf(pkg: string): string {
	try {
		return (createRequire(import.meta.url)(`${pkg}/package.json`) as { version: string }).version;
	} catch {
		return "unknown";
	}
}

export async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: { quick: { type: "boolean" }, only: { type: "string" }, out: { type: "string" }, help: { type: "boolean" } },
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const mode = values.quick ? "quick" : "full";
	const only = values.only
		?.split(",")
		.map((name) => name.trim())
		.filter(Boolean);
	const unknown = only?.filter((name) => !(MEASUREMENTS as readonly string[]).includes(name));
	if (unknown?.length) {
		console.error(`Unknown measurement: ${unknown.join(", ")}\n${USAGE}`);
		return 2;
	}
	const selected = new Set<Measurement>((only as Measurement[] | undefined) ?? MEASUREMENTS);
	// Cost is arithmetic on the operation counts and the archive's bytes, so either needs the others.
	if (selected.has("cost") || selected.has("operations")) selected.add("operations").add("cost").add("archive");
	const out = values.out ? path.resolve(values.out) : DEFAULT_OUT;
	const config = CONFIG[mode];

	const needsPipeline = (["ingest", "e2e", "freshness", "aggregator", "meters"] as const).filter((name) => selected.has(name));
	// The aggregator scale runs before e2e creates 100 tenants, so reading its storage (which asks
	// every tenant's aggregator) stays cheap. Meters runs last on the shared pipeline; archive and
	// operations start their own, and operations prices the archive's figures.
	const order = (["client", "ingest", "aggregator", "e2e", "freshness", "meters", "archive", "operations"] as const).filter((name) =>
		selected.has(name),
	);
	const phases: Phase[] = [
		...(needsPipeline.length ? [{ name: "starting the pipeline", weight: WEIGHTS[mode].start }] : []),
		...order.map((name) => ({ name, weight: WEIGHTS[mode][name] })),
	];
	const progress = progressBar(phases);

	const started = Date.now();
	const cpus = os.cpus();
	const results: BenchResults = {
		schema: 1,
		mode,
		date: new Date(started).toISOString(),
		durationSeconds: 0,
		machine: {
			platform: os.platform(),
			release: os.release(),
			arch: os.arch(),
			cpuModel: cpus[0]?.model.trim() ?? "unknown",
			cpus: os.availableParallelism(),
			memoryGb: Math.round(os.totalmem() / 2 ** 30),
		},
		versions: {
			node: process.version,
			wrangler: versionOf("wrangler"),
			autocannon: versionOf("autocannon"),
			tinybench: versionOf("tinybench"),
			"posthog-node": versionOf("posthog-node"),
			"@segment/analytics-node": versionOf("@segment/analytics-node"),
		},
		measurements: {},
		errors: {},
		non2xx: { total: 0, byMeasurement: {} },
		goals: [],
	};
	const attempt = async (name: Measurement, run: () => Promise<void>) => {
		progress.phase(name);
		try {
			await run();
		} catch (err) {
			results.errors[name] = err instanceof Error ? err.message : String(err);
		}
	};

	let pipeline: LocalPipeline | undefined;
	let startError: string | undefined;
	// Ctrl-C exits the process (not a re-raised signal, which would skip the exit listeners that
	// stop workerd and remove the pipeline's temporary folders).
	const clearBar = () => progress.finish();
	const interrupted = () => process.exit(130);
	process.on("exit", clearBar);
	process.prependListener("SIGINT", interrupted);
	try {
		for (const name of order) {
			const onPipeline = name !== "client" && name !== "operations" && name !== "archive";
			if (onPipeline && !pipeline && startError === undefined) {
				progress.phase("starting the pipeline");
				try {
					// Default flush settings; only the per-tenant rate limit is lifted, so load is not refused.
					pipeline = await startLocalPipeline({ tenantRateLimit: 1_000_000_000 });
				} catch (err) {
					startError = err instanceof Error ? err.message : String(err);
				}
			}
			if (onPipeline && !pipeline) {
				results.errors[name] = `the local pipeline did not start: ${startError}`;
				continue;
			}
			const p = pipeline!;
			if (name === "client") {
				await attempt(name, async () => {
					results.measurements.client = await measureClient(progress, config.client);
				});
			} else if (name === "ingest") {
				await attempt(name, async () => {
					const ingest = await measureIngest(p, progress, config.ingest);
					results.measurements.ingest = ingest;
					results.non2xx.byMeasurement.ingest = ingest.non2xx;
				});
			} else if (name === "e2e") {
				await attempt(name, async () => {
					const e2e = await measureEndToEnd(p, progress, config.e2e);
					results.measurements.e2e = e2e;
					results.non2xx.byMeasurement.e2e = mergeCounts(e2e.runs.map((run) => run.non2xx));
				});
			} else if (name === "freshness") {
				await attempt(name, async () => {
					results.measurements.freshness = await measureFreshness(p, progress, config.freshness);
				});
			} else if (name === "meters") {
				await attempt(name, async () => {
					const meters = await measureMeters(p, progress, config.meters);
					results.measurements.meters = meters;
					results.non2xx.byMeasurement.meters = mergeCounts([
						...meters.runs.map((run) => run.non2xx),
						meters.query.meter.non2xx,
						meters.query.timeseries.non2xx,
					]);
				});
			} else if (name === "aggregator") {
				await attempt(name, async () => {
					const scale = await measureAggregatorScale(p, progress, {
						checkpoints: [...config.aggregator.checkpoints],
						senders: config.aggregator.senders,
					});
					results.measurements.aggregator = scale;
					results.non2xx.byMeasurement.aggregator = scale.non2xx;
				});
			} else if (name === "archive") {
				if (pipeline) {
					await pipeline.stop();
					pipeline = undefined;
				}
				await attempt(name, async () => {
					const archive = await measureArchive(progress, config.archive);
					results.measurements.archive = archive;
					results.non2xx.byMeasurement.archive = mergeCounts(archive.runs.map((run) => run.non2xx));
				});
			} else if (name === "operations") {
				if (pipeline) {
					await pipeline.stop();
					pipeline = undefined;
				}
				await attempt(name, async () => {
					const operations = await measureOperations(progress, config.operations);
					results.measurements.operations = operations;
					results.non2xx.byMeasurement.operations = mergeCounts(operations.scenarios.map((s) => s.non2xx));
					results.measurements.cost = {
						scenarios: operations.scenarios.map((s) => ({
							batch: s.batch,
							...costPerMillionEvents(withArchive(s.counts, results.measurements.archive)),
						})),
						prices: PRICES,
						peers: PEER_PRICES_PER_MILLION_EVENTS,
					};
				});
				if (results.errors.operations) results.errors.cost = "needs the operation counts";
			}
		}
	} finally {
		await pipeline?.stop();
		process.off("exit", clearBar);
		process.off("SIGINT", interrupted);
		progress.finish();
	}

	results.non2xx.total = Object.values(results.non2xx.byMeasurement).reduce((sum, counts) => sum + totalOf(counts), 0);
	results.goals = evaluateGoals(results);
	results.durationSeconds = Math.round((Date.now() - started) / 100) / 10;
	writeFileSync(out, `${JSON.stringify(results, null, "\t")}\n`);
	console.log(renderReport(results));
	const shown = path.relative(process.cwd(), out);
	console.log(
		`\nResults: ${shown.startsWith("..") ? out : shown} · total runtime ${Math.floor(results.durationSeconds / 60)} min ${Math.floor(results.durationSeconds % 60)} s`,
	);
	return Object.keys(results.errors).length > 0 ? 1 : 0;
}

/** The counts with the archive's R2 writes and storage for their events, from measurement 9 (none without it). */
function withArchive(counts: OperationCounts, archive: ArchiveResult | undefined): OperationCounts {
	if (!archive) return counts;
	return {
		...counts,
		archiveParts: (counts.events * archive.partsPerMillionEvents) / 1e6,
		archiveGbMonths: (counts.events * archive.bytesPerEvent) / 1e9,
	};
}

function mergeCounts(counts: Record<string, number>[]): Record<string, number> {
	const merged: Record<string, number> = {};
	for (const c of counts) for (const [status, n] of Object.entries(c)) merged[status] = (merged[status] ?? 0) + n;
	return merged;
}

if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
	process.exitCode = await main(process.argv.slice(2));
}
