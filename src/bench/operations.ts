// 4. Platform operations per 1,000 events at client batch sizes 1 and 100, counted by the
// pipeline's own instrumentation (GET /v1/admin/operations, every page) on a fresh pipeline per scenario.
import { startLocalPipeline, type LocalPipeline } from "../scripts/local-pipeline.ts";
import { durableObjectGbSeconds, DURATION_MODEL, type OperationCounts } from "./cost.ts";
import { sampleCpu, type CpuUse } from "./cpu.ts";
import type { Progress } from "./progress.ts";
import {
	benchEvent,
	ControlPlane,
	countStatus,
	lanes,
	packedMessageSizes,
	postEvents,
	queueChunks,
	sleep,
	totalOf,
	waitFor,
	type Operations,
	type StatusCounts,
	type WireEvent,
} from "./support.ts";

export interface OperationsScenario {
	batch: number;
	events: number;
	/** Ingest POSTs the benchmark sent. */
	requests: number;
	/** What the pipeline counted for this scenario's events (the benchmark's own calls taken out). */
	counted: {
		httpRequests: number;
		consumerBatches: number;
		queueMessages: number;
		queueSendCalls: number;
		aggregatorRpcs: number;
		alarms: number;
		flushCalls: number;
		sqliteRowsWritten: number;
		d1RowsWritten: number;
		analyticsPoints: number;
		storageBytes: number;
	};
	/** Queue messages as the producer packs them, from the events' queued form. */
	queue: { estimatedMessages: number; bytes: number; chunks: number };
	/** The counts the cost arithmetic prices, for `events` events. */
	counts: OperationCounts;
	per1000: Omit<OperationCounts, "events">;
	/** Consistency of the instrumentation with what the benchmark knows it sent. */
	checks: { httpRequestsMatchSent: boolean; queueMessagesMatchEstimate: boolean };
	cpu?: CpuUse;
	controlCalls: number;
	non2xx: StatusCounts;
}

export interface OperationsResult {
	scenarios: OperationsScenario[];
	notes: string[];
}

export const OPERATIONS_BATCHES = [1, 100] as const;
/** The dedupe window (src/events/schema.ts DEDUPE_WINDOW_MS, 42 days): how long the aggregator's storage holds an event's id. */
const DEDUPE_WINDOW_DAYS = 42;

export async function measureOperations(
	progress: Progress,
	options: { events: Record<(typeof OPERATIONS_BATCHES)[number], number>; senders: number },
): Promise<OperationsResult> {
	const scenarios: OperationsScenario[] = [];
	for (const [index, batch] of OPERATIONS_BATCHES.entries()) {
		const step = (fraction: number, detail: string) =>
			progress.update((index + fraction) / OPERATIONS_BATCHES.length, `batch ${batch}: ${detail}`);
		step(0, "starting a fresh pipeline");
		// Producer counters are reported on every request, so nothing the traffic caused is left
		// unreported in an isolate's memory when the counts are read.
		const pipeline = await startLocalPipeline({ tenantRateLimit: 1_000_000_000, vars: { METRICS_REPORT_MS: "0" } });
		try {
			scenarios.push(await scenario(pipeline, batch, options.events[batch], options.senders, step));
		} finally {
			await pipeline.stop();
		}
	}
	return {
		scenarios,
		notes: [
			"Fresh pipeline per scenario, started with METRICS_REPORT_MS=0 and a raised TENANT_RATE_LIMIT.",
			"D1 rows written are the aggregators' flushes only (D1 meta.rows_written); the producer's own operational counter writes (producer_metrics) are excluded.",
			"Worker requests = ingest HTTP requests + queue consumer invocations. The pipeline's http_requests counter also sees the benchmark's own calls (tenant creation, flush, polls); those, and one probe event sent to another tenant to make every isolate report its counters, are taken out.",
			"The one POST /v1/flush per scenario stands in for the alarm that would otherwise have flushed: its RPC is counted as an alarm, not as an aggregator RPC.",
			`Storage is priced as the aggregator's SQLite size after the scenario, held for the ${DEDUPE_WINDOW_DAYS}-day dedupe window (GB-months = GB × ${DEDUPE_WINDOW_DAYS} / 30). Worker CPU is workerd's CPU time (every thread: producer, consumer, aggregators and the local D1 and queue) from the first send until the flush: an upper bound. Durable Object duration is modelled (src/bench/cost.ts DURATION_MODEL): the same CPU time again (all of it counted as the aggregator's, an upper bound) plus ${DURATION_MODEL.d1RoundTripMs} ms of waiting per D1 flush, at ${DURATION_MODEL.memoryGb * 1000} MB; idle objects may hibernate and are not billed. Not priced: D1 rows read and storage (rollups only).`,
			"Queue chunks are estimated from the packed message sizes (the producer's packing, recomputed from each event's queued form): one 64 KB chunk per message up to 64 KB, else ceil(bytes / 64 KB).",
		],
	};
}

/** Milliseconds of workerd CPU in a sample; 0 where /proc cannot be read (the line then shows $0). */
function cpuMsOf(cpu: CpuUse | undefined): number {
	return cpu ? cpu.workerdCores * cpu.wallSeconds * 1000 : 0;
}

async function scenario(
	pipeline: LocalPipeline,
	batch: number,
	events: number,
	senders: number,
	step: (fraction: number, detail: string) => void,
): Promise<OperationsScenario> {
	const control = new ControlPlane(pipeline);
	const tenant = await control.createTenant(`bench-ops-${batch}`);
	const probe = await control.createTenant("bench-ops-probe");
	const requests = Math.ceil(events / batch);
	const non2xx: StatusCounts = {};
	const queue = { estimatedMessages: 0, bytes: 0, chunks: 0 };
	// workerd's CPU from the first send until every event is consumed and flushed.
	const cpuSample = sampleCpu();
	let accepted = 0;
	let next = 0;
	await lanes(senders, async () => {
		const r = next++;
		if (r >= requests) return false;
		const now = Date.now();
		const batchEvents: WireEvent[] = Array.from({ length: Math.min(batch, events - r * batch) }, (_, i) =>
			benchEvent(r * batch + i, { id: crypto.randomUUID(), timestamp: now }),
		);
		const status = await postEvents(pipeline, tenant.writeKey, JSON.stringify({ events: batchEvents }));
		countStatus(non2xx, status);
		if (status === 202) {
			accepted += batchEvents.length;
			for (const bytes of packedMessageSizes(tenant.id, batchEvents)) {
				queue.estimatedMessages++;
				queue.bytes += bytes;
				queue.chunks += queueChunks(bytes);
			}
		}
		if (r % 20 === 0) step((0.7 * r) / requests, "sending");
		return true;
	});
	if (totalOf(non2xx) > 0)
		throw new Error(`operations (batch ${batch}): ${totalOf(non2xx)} ingest requests failed: ${JSON.stringify(non2xx)}`);

	// Every event consumed, then flushed, then every Analytics Engine point written.
	step(0.75, "waiting until every event is consumed");
	await waitFor("every event to be consumed", async () => (await control.metrics(tenant)).consumed >= accepted, 120_000, 250);
	await control.flush(tenant);
	const cpu = cpuSample.stop();
	step(0.85, "waiting for the flush and Analytics Engine outbox");
	// Packed rollups (meters, series) make no points, so points never catch up with flushed rows:
	// the outbox (drained by alarms set at once while it holds points) is empty once the count stops moving.
	let lastPoints = -1;
	let steadyReads = 0;
	await waitFor(
		"the Analytics Engine outbox to drain",
		async () => {
			const metrics = await control.metrics(tenant);
			const ops = await control.operations();
			const points = ops.tenants.find((t) => t.tenant === tenant.id)?.analytics_points ?? 0;
			steadyReads = metrics.oldestUnflushedAgeMs === null && points > 0 && points === lastPoints ? steadyReads + 1 : 0;
			lastPoints = points;
			return steadyReads >= 3;
		},
		60_000,
		500,
	);

	// A one-event probe to another tenant makes the isolate report every counter it holds (all the
	// calls above included); then, after a quiet pause, one read of every page sees all of it.
	step(0.95, "reading the operation counts");
	const controlCalls = control.calls;
	if ((await postEvents(pipeline, probe.writeKey, JSON.stringify({ events: [benchEvent(0)] }))) !== 202)
		throw new Error("the operations probe was refused");
	let ops: Operations;
	for (let attempt = 0; ; attempt++) {
		await sleep(2000);
		ops = await control.operations();
		const probeSeen = (ops.tenants.find((t) => t.tenant === probe.id)?.rpc_calls ?? 0) >= 1;
		if ((probeSeen && (ops.pipeline.queue_messages ?? 0) >= queue.estimatedMessages + 1) || attempt === 5) break;
	}
	const mine = ops.tenants.find((t) => t.tenant === tenant.id)!;
	const counted = {
		httpRequests: (ops.pipeline.http_requests ?? 0) - controlCalls - 1,
		consumerBatches: (ops.pipeline.consumer_batches ?? 0) - 1,
		queueMessages: (ops.pipeline.queue_messages ?? 0) - 1,
		queueSendCalls: (ops.pipeline.queue_send_calls ?? 0) - 1,
		aggregatorRpcs: mine.rpc_calls - 1,
		alarms: mine.alarms + 1,
		flushCalls: 1,
		sqliteRowsWritten: mine.sqlite_rows_written,
		d1RowsWritten: mine.d1_rows_written,
		analyticsPoints: mine.analytics_points,
		storageBytes: mine.storageBytes,
	};
	const counts: OperationCounts = {
		events: accepted,
		workerRequests: counted.httpRequests + counted.consumerBatches,
		queueMessages: counted.queueMessages,
		queueChunks: queue.chunks,
		aggregatorRpcs: counted.aggregatorRpcs,
		alarms: counted.alarms,
		sqliteRowsWritten: counted.sqliteRowsWritten,
		d1RowsWritten: counted.d1RowsWritten,
		analyticsPoints: counted.analyticsPoints,
		// Remembered ids (the bulk of the storage) stay for the dedupe window, then are pruned.
		storageGbMonths: (counted.storageBytes / 1e9) * (DEDUPE_WINDOW_DAYS / 30),
		cpuMs: cpuMsOf(cpu),
		// One D1 round trip per flush: every alarm and the one flush call.
		durableObjectGbSeconds: durableObjectGbSeconds(cpuMsOf(cpu), counted.alarms + counted.flushCalls),
	};
	const per1000 = Object.fromEntries(
		Object.entries(counts)
			.filter(([name]) => name !== "events")
			.map(([name, value]) => [name, (value * 1000) / accepted]),
	) as Omit<OperationCounts, "events">;
	step(1, "done");
	return {
		batch,
		events: accepted,
		requests,
		counted,
		queue,
		counts,
		per1000,
		checks: {
			httpRequestsMatchSent: counted.httpRequests === requests,
			queueMessagesMatchEstimate: counted.queueMessages === queue.estimatedMessages,
		},
		cpu,
		controlCalls,
		non2xx,
	};
}
