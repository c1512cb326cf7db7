// 3. Freshness: how long after its POST an event is in /v1/usage, at low load and with the default
// flush settings (no /v1/flush calls). Each sample has its own sku, so its arrival is unambiguous;
// samples start staggered and overlap, and tinybench computes the percentiles of their durations.
import { readFileSync } from "node:fs";
import path from "node:path";
import { Bench, type FnReturnedObject } from "tinybench";
import type { LocalPipeline } from "../scripts/local-pipeline.ts";
import type { Progress } from "./progress.ts";
import { benchEvent, ControlPlane, postEvents, sleep } from "./support.ts";

export interface FreshnessResult {
	samples: number;
	staggerMs: number;
	/** How often /v1/usage is read: the resolution of each sample. */
	pollIntervalMs: number;
	/** The settings an event waits on, from wrangler.toml. */
	flushIntervalMs: number;
	queueBatchTimeoutSeconds: number;
	latencyMs: { p50: number; p99: number; min: number; max: number; mean: number };
}

const SAMPLE_TIMEOUT_MS = 120_000;

export async function measureFreshness(
	pipeline: LocalPipeline,
	progress: Progress,
	options: { samples: number; staggerMs: number; pollIntervalMs: number },
): Promise<FreshnessResult> {
	const control = new ControlPlane(pipeline);
	const tenant = await control.createTenant("bench-freshness");
	const prefix = "fresh-";
	const waiting = new Map<string, { resolve: (visibleAt: number) => void; reject: (err: unknown) => void }>();
	let done = 0;
	let polling = true;

	// One reader for every sample in flight: a sample is visible once its sku has a usage row.
	const poller = (async () => {
		while (polling) {
			try {
				if (waiting.size > 0) {
					const seen = await control.usageEvents(tenant, (sku) => sku.startsWith(prefix));
					const at = performance.now();
					for (const sku of seen.keys()) {
						waiting.get(sku)?.resolve(at);
						waiting.delete(sku);
					}
				}
			} catch (err) {
				for (const sample of waiting.values()) sample.reject(err);
				waiting.clear();
			}
			await sleep(options.pollIntervalMs);
		}
	})();

	let next = 0;
	const bench = new Bench({
		concurrency: "task",
		iterations: options.samples,
		threshold: options.samples,
		time: 3_600_000,
		warmup: false,
		throws: true,
	});
	bench.add("freshness", async (): Promise<FnReturnedObject> => {
		const slot = next++;
		await sleep(slot * options.staggerMs);
		const sku = `${prefix}${slot}`;
		const visible = new Promise<number>((resolve, reject) => {
			waiting.set(sku, { resolve, reject });
			setTimeout(() => reject(new Error(`sample ${sku} not in /v1/usage after ${SAMPLE_TIMEOUT_MS} ms`)), SAMPLE_TIMEOUT_MS).unref();
		});
		const start = performance.now();
		const status = await postEvents(pipeline, tenant.writeKey, JSON.stringify({ events: [benchEvent(slot, { sku })] }));
		if (status !== 202) throw new Error(`freshness sample answered ${status}`);
		const visibleAt = await visible;
		progress.update(++done / options.samples, `${done}/${options.samples} samples visible`);
		return { overriddenDuration: visibleAt - start };
	});
	try {
		await bench.run();
	} finally {
		polling = false;
		await poller;
	}
	const result = bench.tasks[0]!.result;
	if (result.state !== "completed")
		throw new Error(`freshness bench ended ${result.state}${"error" in result ? `: ${result.error.message}` : ""}`);
	const { p50, p99, min, max, mean } = result.latency;
	return {
		samples: result.latency.samplesCount,
		staggerMs: options.staggerMs,
		pollIntervalMs: options.pollIntervalMs,
		...flushSettings(),
		latencyMs: { p50, p99, min, max, mean },
	};
}

/** FLUSH_INTERVAL_MS and the events queue's max_batch_timeout, as wrangler.toml sets them. */
function flushSettings(): { flushIntervalMs: number; queueBatchTimeoutSeconds: number } {
	const toml = readFileSync(path.resolve(import.meta.dirname, "../../wrangler.toml"), "utf8");
	const consumer = toml.slice(toml.indexOf('queue = "meterline-events"', toml.indexOf("[[queues.consumers]]")));
	return {
		flushIntervalMs: Number(/^FLUSH_INTERVAL_MS = "(\d+)"/m.exec(toml)?.[1] ?? NaN),
		queueBatchTimeoutSeconds: Number(/^max_batch_timeout = (\d+)/m.exec(consumer)?.[1] ?? NaN),
	};
}
