// 7. Aggregator scale: one tenant's aggregator taking up to 1,000,000 events through the pipeline,
// timed per 10k-event chunk from its consumed counter, with its storage size at checkpoints.
import type { LocalPipeline } from "../scripts/local-pipeline.ts";
import { sampleCpu, type CpuUse } from "./cpu.ts";
import type { Progress } from "./progress.ts";
import { batchBody, ControlPlane, countStatus, lanes, postEvents, sleep, type StatusCounts } from "./support.ts";

export interface ScaleCheckpoint {
	events: number;
	/** Seconds from the first POST until the aggregator had consumed `events`. */
	seconds: number;
	/** The aggregator's SQLite size, read as it passed the checkpoint, and the events it had then. */
	storageBytes: number;
	storageAtEvents: number;
	bytesPerEvent: number;
	/** Since the previous checkpoint. */
	segment: { fromEvents: number; seconds: number; eventsPerSecond: number; msPer10k: number; slowestChunkMs: number };
}

export interface AggregatorScaleResult {
	events: number;
	batch: number;
	senders: number;
	chunkEvents: number;
	checkpoints: ScaleCheckpoint[];
	/** Milliseconds per 10k-event chunk, in order; the first includes the pipeline's ramp-up, the last its drain. */
	chunkMs: number[];
	/** Mean ms per chunk over the first and the last tenth of the chunks (ramp-up and drain left out). */
	earlyMsPer10k: number;
	lateMsPer10k: number;
	/** late / early: 1 means each event costs the same however many the aggregator holds. */
	growth: number;
	/** The slowest chunk over the mean (ramp-up and drain left out). */
	slowestOverMean: number;
	cpu?: CpuUse;
	non2xx: StatusCounts;
}

/**
 * Events per POST: one queue message each, so a full consumer batch (100 messages) is one 10k-event
 * RPC and the consumed counter moves in steps of about one chunk.
 */
const BATCH = 100;
const CHUNK = 10_000;
/** Events sent but not yet consumed, at most: keeps the queue short, so chunk times follow the aggregator. */
const WINDOW = 50_000;
const POLL_MS = 100;
/** No progress for this long ends the measurement. */
const STALL_MS = 60_000;

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

export async function measureAggregatorScale(
	pipeline: LocalPipeline,
	progress: Progress,
	options: { checkpoints: number[]; senders: number },
): Promise<AggregatorScaleResult> {
	const control = new ControlPlane(pipeline);
	const tenant = await control.createTenant("bench-scale");
	const body = batchBody(BATCH, "scale");
	const total = options.checkpoints[options.checkpoints.length - 1]!;
	const non2xx: StatusCounts = {};
	const crossings: number[] = [];
	const checkpoints: ScaleCheckpoint[] = [];
	let sent = 0;
	let consumed = 0;
	let failure: unknown;

	const start = performance.now();
	const cpu = sampleCpu();
	// Reads the consumed counter, and times every 10k boundary it passed by interpolating between
	// two reads; at a checkpoint it also reads the aggregator's storage size.
	const poller = (async () => {
		let last = { at: start, consumed: 0, progressAt: start };
		while (consumed < total && failure === undefined) {
			await sleep(POLL_MS);
			const now = (await control.metrics(tenant)).consumed;
			const at = performance.now();
			for (let boundary = (crossings.length + 1) * CHUNK; boundary <= now; boundary += CHUNK) {
				crossings.push(last.at + ((at - last.at) * (boundary - last.consumed)) / Math.max(1, now - last.consumed));
			}
			if (now === last.consumed && at - last.progressAt > STALL_MS)
				throw new Error(`aggregator scale: stuck at ${now} events consumed`);
			last = { at, consumed: now, progressAt: now === last.consumed ? last.progressAt : at };
			consumed = now;
			for (const target of options.checkpoints.slice(checkpoints.length)) {
				if (consumed < target) break;
				const storageBytes = (await control.operations()).tenants.find((t) => t.tenant === tenant.id)?.storageBytes ?? 0;
				const storageAtEvents = (await control.metrics(tenant)).consumed;
				checkpoints.push({
					events: target,
					seconds: 0,
					storageBytes,
					storageAtEvents,
					bytesPerEvent: storageBytes / storageAtEvents,
					segment: { fromEvents: 0, seconds: 0, eventsPerSecond: 0, msPer10k: 0, slowestChunkMs: 0 },
				});
			}
			progress.update(consumed / total, `${consumed.toLocaleString("en-US")} of ${total.toLocaleString("en-US")} events`);
		}
	})().catch((err) => {
		failure = err;
	});
	try {
		await lanes(options.senders, async () => {
			if (sent >= total || failure !== undefined) return false;
			sent += BATCH;
			while (sent - consumed > WINDOW && failure === undefined) await sleep(20);
			const status = await postEvents(pipeline, tenant.writeKey, body);
			countStatus(non2xx, status);
			if (status !== 202) failure = new Error(`aggregator scale: a batch answered ${status}`);
			return true;
		});
	} finally {
		await poller;
	}
	const used = cpu.stop();
	if (failure !== undefined) throw failure;

	const chunkMs = crossings.map((at, i) => at - (i === 0 ? start : crossings[i - 1]!));
	let from = 0;
	for (const checkpoint of checkpoints) {
		const end = crossings[checkpoint.events / CHUNK - 1]!;
		const begin = from === 0 ? start : crossings[from / CHUNK - 1]!;
		const seconds = (end - begin) / 1000;
		checkpoint.seconds = (end - start) / 1000;
		checkpoint.segment = {
			fromEvents: from,
			seconds,
			eventsPerSecond: (checkpoint.events - from) / seconds,
			msPer10k: (seconds * 1000 * CHUNK) / (checkpoint.events - from),
			slowestChunkMs: Math.max(...chunkMs.slice(from / CHUNK, checkpoint.events / CHUNK)),
		};
		from = checkpoint.events;
	}
	// The first chunk includes the pipeline's ramp-up and the last its drain (a partial consumer batch
	// waits for the queue's batch timeout), so neither says anything about the aggregator's pace.
	const steady = chunkMs.length > 2 ? chunkMs.slice(1, -1) : chunkMs;
	const tenth = Math.max(1, Math.floor(steady.length / 10));
	const earlyMsPer10k = mean(steady.slice(0, tenth));
	const lateMsPer10k = mean(steady.slice(-tenth));
	return {
		events: total,
		batch: BATCH,
		senders: options.senders,
		chunkEvents: CHUNK,
		checkpoints,
		chunkMs,
		earlyMsPer10k,
		lateMsPer10k,
		growth: lateMsPer10k / earlyMsPer10k,
		slowestOverMean: Math.max(...steady) / mean(steady),
		cpu: used,
		non2xx,
	};
}
