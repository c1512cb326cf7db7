// 1. Ingest latency and rate: POST /v1/events at batch sizes 1, 100 and 1000, fire-and-forget and
// with ?ack=durable, under autocannon at a fixed concurrency.
import autocannon from "autocannon";
import type { LocalPipeline } from "../scripts/local-pipeline.ts";
import { sampleCpu, type CpuUse } from "./cpu.ts";
import type { Progress } from "./progress.ts";
import { batchBody, ControlPlane, sleep, waitFor, type StatusCounts } from "./support.ts";

export interface IngestRun {
	batch: number;
	ack: "fire-and-forget" | "durable";
	latencyMs: { p50: number; p99: number; max: number; mean: number };
	requestsPerSecond: number;
	eventsPerSecond: number;
	/** 2xx answers. */
	requests: number;
	non2xx: number;
	errors: number;
	timeouts: number;
	statusCodes: Record<string, number>;
	cpu?: CpuUse;
}

export interface IngestResult {
	connections: number;
	secondsPerRun: number;
	runs: IngestRun[];
	/** Non-2xx answers over every run, by status; connection errors and timeouts as "0". */
	non2xx: StatusCounts;
}

export const INGEST_BATCHES = [1, 100, 1000] as const;
const ACKS = ["fire-and-forget", "durable"] as const;

export async function measureIngest(
	pipeline: LocalPipeline,
	progress: Progress,
	options: { seconds: number; connections: number },
): Promise<IngestResult> {
	const control = new ControlPlane(pipeline);
	const tenant = await control.createTenant("bench-ingest");
	let accepted = 0;
	/** Lets the queue drain what the last run accepted, so each run starts from an idle pipeline. */
	const drain = async () => {
		let last = -1;
		await waitFor(
			"the ingest backlog to drain",
			async () => {
				const { consumed } = await control.metrics(tenant);
				const settled = consumed >= accepted && consumed === last;
				last = consumed;
				return settled;
			},
			120_000,
			600,
		);
	};
	const cannon = (batch: number, ack: (typeof ACKS)[number], seconds: number) =>
		autocannon({
			url: `${pipeline.url}/v1/events${ack === "durable" ? "?ack=durable" : ""}`,
			method: "POST",
			connections: options.connections,
			duration: seconds,
			headers: { authorization: `Bearer ${tenant.writeKey}`, "content-type": "application/json" },
			body: batchBody(batch),
		});

	// A short warm-up, so the first measured run does not pay for compiling the Worker's hot paths.
	progress.update(0, "warm-up");
	const warm = await cannon(100, "fire-and-forget", 1);
	accepted += warm["2xx"] * 100;
	await drain();

	const runs: IngestRun[] = [];
	const steps = INGEST_BATCHES.length * ACKS.length;
	for (const ack of ACKS) {
		for (const batch of INGEST_BATCHES) {
			const step = runs.length;
			const label = `batch ${batch}, ${ack}`;
			progress.update(step / steps, label);
			const cpu = sampleCpu();
			const instance = cannon(batch, ack, options.seconds);
			let ticks = 0;
			instance.on("tick", () => progress.update((step + Math.min(1, ++ticks / options.seconds)) / steps, label));
			const result = await instance;
			const used = cpu.stop();
			accepted += result["2xx"] * batch;
			const statusCodes = Object.fromEntries(
				Object.entries(result.statusCodeStats).map(([status, { count }]) => [status, Number(count)]),
			);
			runs.push({
				batch,
				ack,
				latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max, mean: result.latency.mean },
				requestsPerSecond: result.requests.average,
				eventsPerSecond: result.requests.average * batch,
				requests: result["2xx"],
				non2xx: result.non2xx,
				errors: result.errors,
				timeouts: result.timeouts,
				statusCodes,
				cpu: used,
			});
			progress.update((step + 1) / steps, `${label}: draining the queue`);
			await drain();
			await sleep(200);
		}
	}
	const non2xx: StatusCounts = {};
	for (const run of runs) {
		for (const [status, count] of Object.entries(run.statusCodes))
			if (!status.startsWith("2")) non2xx[status] = (non2xx[status] ?? 0) + count;
		if (run.errors + run.timeouts > 0) non2xx["0"] = (non2xx["0"] ?? 0) + run.errors + run.timeouts;
	}
	return { connections: options.connections, secondsPerRun: options.seconds, runs, non2xx };
}
