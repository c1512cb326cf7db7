// The printed report: one table per measurement, the design goals met or missed, and the non-2xx check.
import { type CostLine } from "./cost.ts";
import { busy, int, num, table, usd } from "./format.ts";
import { LINE_CAUSES, perRequestShare } from "./goals.ts";
import { archiveCostLines, renderArchive } from "./archive-report.ts";
import { renderMeters } from "./meters.ts";
import type { BenchResults } from "./results.ts";

export function renderReport(results: BenchResults): string {
	const out: string[] = [];
	const { ingest, e2e, freshness, operations, cost, client, aggregator, meters, archive } = results.measurements;
	const m = results.machine;
	out.push(
		`Meterline benchmark (${results.mode} run) · ${results.date}`,
		`${m.cpus} × ${m.cpuModel} · ${m.memoryGb} GB · ${m.platform} ${m.release} ${m.arch} · Node ${results.versions.node} · wrangler ${results.versions.wrangler} (local workerd)`,
		"",
	);

	if (ingest) {
		out.push(
			`1. Ingest: POST /v1/events, ${ingest.connections} connections, ${ingest.secondsPerRun} s per run (autocannon; workerd thread = how busy workerd's busiest thread was)`,
		);
		out.push(
			table(
				["batch", "ack", "p50 ms", "p99 ms", "max ms", "req/s", "events/s", "workerd thread", "non-2xx"],
				ingest.runs.map((run) => [
					String(run.batch),
					run.ack,
					num(run.latencyMs.p50, 0),
					num(run.latencyMs.p99, 0),
					num(run.latencyMs.max, 0),
					int(run.requestsPerSecond),
					int(run.eventsPerSecond),
					busy(run.cpu),
					String(run.non2xx + run.errors + run.timeouts),
				]),
				2,
			),
		);
		const saved = ingest.runs
			.filter((run) => run.ack === "fire-and-forget")
			.map((run) => {
				const durable = ingest.runs.find((d) => d.ack === "durable" && d.batch === run.batch);
				return durable
					? `batch ${run.batch}: ${num(durable.latencyMs.p50 - run.latencyMs.p50, 0)} ms at p50, ${num(durable.latencyMs.p99 - run.latencyMs.p99, 0)} ms at p99`
					: "";
			})
			.filter(Boolean);
		if (saved.length) out.push(`   fire-and-forget saves (durable − fire-and-forget): ${saved.join("; ")}`);
		out.push(
			"   (locally the queue is in memory in the same workerd process, so waiting for sendBatch costs little here; on Cloudflare ?ack=durable adds the Queues write to every answer)",
		);
		const share = perRequestShare(results);
		if (share) {
			const shares = ingest.runs.flatMap((run) => (run.cpu ? [Math.round(run.cpu.busiestThreadShare * 100)] : []));
			out.push(
				`   workerd's busiest thread was busy ${Math.min(...shares)}–${Math.max(...shares)}% in these runs; at batch 100 about ${Math.round(share.share * 100)}% of its time is per-request work (it carries ${int(share.rate1000)} events/s at batch 1000, ${int(share.rate100)} at batch 100)`,
			);
		}
		out.push("");
	}

	if (e2e) {
		out.push("2. End-to-end: first POST until every event is in /v1/usage (batches of 100; settling = after the last POST answered)");
		out.push(
			table(
				[
					"tenants",
					"events",
					"senders",
					"seconds",
					"events/s",
					"sending s",
					"settling s",
					"events/RPC",
					"workerd thread (sending)",
					"non-2xx",
				],
				e2e.runs.map((run) => [
					String(run.tenants),
					int(run.events),
					String(run.senders),
					num(run.seconds, 2),
					int(run.eventsPerSecond),
					num(run.sendSeconds, 2),
					num(run.settleSeconds, 2),
					int(run.eventsPerRpc),
					busy(run.sendCpu),
					String(Object.values(run.non2xx).reduce((a, b) => a + b, 0)),
				]),
			),
		);
		out.push("");
	}

	if (freshness) {
		out.push(
			`3. Freshness: POST until visible in /v1/usage, default flush settings, ${freshness.samples} samples ${freshness.staggerMs} ms apart (tinybench; read every ${freshness.pollIntervalMs} ms)`,
		);
		const l = freshness.latencyMs;
		out.push(
			table(
				["p50 s", "p99 s", "min s", "max s", "mean s"],
				[[num(l.p50 / 1000, 2), num(l.p99 / 1000, 2), num(l.min / 1000, 2), num(l.max / 1000, 2), num(l.mean / 1000, 2)]],
				0,
			),
		);
		out.push(
			`   an event waits for the queue's batch (max_batch_timeout ${freshness.queueBatchTimeoutSeconds} s at low load) and its aggregator's RPC; reads merge what the aggregator has not flushed yet, so the flush (every FLUSH_INTERVAL_MS = ${num(freshness.flushIntervalMs / 1000, 0)} s) does not delay it`,
		);
		out.push("");
	}

	if (operations) {
		const scenarios = operations.scenarios;
		out.push("4. Platform operations per 1,000 events (the pipeline's own counters, GET /v1/admin/operations)");
		const row = (label: string, pick: (s: (typeof scenarios)[number]) => number, digits = 1) => [
			label,
			...scenarios.map((s) => num(pick(s), digits)),
		];
		out.push(
			table(
				["operation", ...scenarios.map((s) => `batch ${s.batch}`)],
				[
					row("Worker requests", (s) => s.per1000.workerRequests),
					row("  ingest HTTP requests", (s) => (s.counted.httpRequests * 1000) / s.events),
					row("  queue consumer invocations", (s) => (s.counted.consumerBatches * 1000) / s.events),
					row("queue messages written", (s) => s.per1000.queueMessages),
					row("queue 64 KB chunks (est. from packed size)", (s) => s.per1000.queueChunks),
					row("aggregator RPCs", (s) => s.per1000.aggregatorRpcs),
					row("aggregator alarms (incl. the final flush)", (s) => s.per1000.alarms, 2),
					row("Durable Object SQLite rows written", (s) => s.per1000.sqliteRowsWritten),
					row("D1 rows written (flushes only)", (s) => s.per1000.d1RowsWritten, 2),
					row("Analytics Engine data points", (s) => s.per1000.analyticsPoints, 2),
					row("aggregator storage, KB", (s) => (s.counted.storageBytes / 1024) * (1000 / s.events)),
				],
			),
		);
		out.push(
			`   events measured: ${scenarios.map((s) => `batch ${s.batch}: ${int(s.events)} in ${int(s.requests)} requests, ${int(s.counted.alarms)} flush${s.counted.alarms === 1 ? "" : "es"} (alarms and the final /v1/flush), ${num(s.counted.d1RowsWritten / Math.max(1, s.counted.alarms), 0)} D1 rows per flush`).join("; ")}`,
		);
		out.push(
			"   (D1 rows per event fall as more events share a flush: a tenant flushes every FLUSH_INTERVAL_MS, or at FLUSH_MAX_ROWS pending rollup rows)",
		);
		const mismatched = scenarios.filter((s) => !s.checks.httpRequestsMatchSent || !s.checks.queueMessagesMatchEstimate);
		out.push(
			mismatched.length === 0
				? "   the counted ingest requests and queue messages equal what the benchmark sent and packed"
				: `   WARNING: counters disagree with what was sent: ${mismatched.map((s) => `batch ${s.batch}: ${s.counted.httpRequests} requests counted / ${s.requests} sent, ${s.counted.queueMessages} messages counted / ${s.queue.estimatedMessages} packed`).join("; ")}`,
		);
		out.push(
			"   D1 rows written exclude the producer's operational counter rows (producer_metrics); the aggregator counts only its flushes.",
		);
		out.push("");
	}

	if (cost) {
		out.push("5. Cost per million events (Cloudflare list prices beyond the included amounts; src/bench/cost.ts)");
		const lines = Object.keys(cost.prices) as CostLine[];
		out.push(
			table(
				["line", ...cost.scenarios.map((s) => `batch ${s.batch}`)],
				[
					...lines.map((line) => [line, ...cost.scenarios.map((s) => usd(s.perMillionEvents[line]))]),
					["total", ...cost.scenarios.map((s) => usd(s.totalPerMillionEvents))],
					["dominant line", ...cost.scenarios.map((s) => s.dominant)],
				],
			),
		);
		for (const [name, peer] of Object.entries(cost.peers))
			out.push(
				`   ${name}: ${peer.usdFrom === peer.usdTo ? `$${peer.usdFrom}` : `$${peer.usdFrom} → $${peer.usdTo}`} per million events`,
			);
		const s100 = cost.scenarios.find((s) => s.batch === 100);
		if (s100)
			out.push(
				`   dominant cost at batch 100: ${LINE_CAUSES[s100.dominant]} — ${usd(s100.perMillionEvents[s100.dominant])} of ${usd(s100.totalPerMillionEvents)}`,
			);
		out.push(
			...(archive
				? archiveCostLines(archive)
				: [
						`   r2ClassA and r2Storage: not measured (the archive measurement ${results.errors.archive ? "failed" : "did not run"}), priced $0`,
					]),
		);
		out.push(
			"   queue chunks are estimated from packed message sizes; Worker CPU is workerd's measured CPU (all threads, an upper bound); Durable Object duration is modelled (cost.ts DURATION_MODEL: that CPU again plus 50 ms per D1 flush, at 128 MB).",
		);
		out.push("");
	}

	if (client) {
		out.push(
			`6. Client overhead: ns per call (tinybench, ${client.rounds} rounds × ${client.iterationsPerRound} iterations × ${client.callsPerIteration} calls; median round)`,
		);
		out.push(
			table(
				["SDK", "call", "ns/call", "± %", "rounds (ns/call)"],
				client.sdks.map((sdk) => [
					sdk.name,
					sdk.call,
					int(sdk.nsPerCall),
					num(sdk.rmePercent, 1),
					sdk.nsPerCallByRound.map((ns) => int(ns)).join(" / "),
				]),
				2,
			),
		);
		out.push(`   Meterline track() is ${num(client.ratio)}× cheaper than ${client.bestPeer}, the better of the two`);
		out.push("");
	}

	if (aggregator) {
		out.push(
			`7. Aggregator scale: one tenant, ${int(aggregator.events)} events in batches of ${aggregator.batch}, timed per ${int(aggregator.chunkEvents)} events`,
		);
		out.push(
			table(
				["checkpoint", "seconds", "segment", "events/s", "ms per 10k", "slowest 10k ms", "storage MB", "bytes/event"],
				aggregator.checkpoints.map((c) => [
					int(c.events),
					num(c.seconds, 1),
					`${int(c.segment.fromEvents)}–${int(c.events)}`,
					int(c.segment.eventsPerSecond),
					int(c.segment.msPer10k),
					int(c.segment.slowestChunkMs),
					num(c.storageBytes / 1e6, 1),
					int(c.bytesPerEvent),
				]),
			),
		);
		out.push(
			`   ms per 10k: first tenth ${int(aggregator.earlyMsPer10k)}, last tenth ${int(aggregator.lateMsPer10k)} (× ${num(aggregator.growth, 2)}); slowest chunk ${num(aggregator.slowestOverMean, 2)}× the mean` +
				(aggregator.growth <= 1.5 && aggregator.slowestOverMean <= 3
					? " — linear, no hot spot"
					: aggregator.growth > 1.5
						? " — cost per event GROWS with the events held"
						: " — a HOT SPOT"),
		);
		out.push(
			`   (the first 10k includes the pipeline's ramp-up from the first POST and the last its drain; both are left out of the tenths and the slowest chunk${aggregator.cpu ? `; workerd's busiest thread was busy ${busy(aggregator.cpu)} of the run` : ""})`,
		);
		out.push("");
	}

	if (meters) out.push(...renderMeters(meters));
	if (archive) out.push(...renderArchive(archive));

	for (const [name, message] of Object.entries(results.errors)) out.push(`FAILED ${name}: ${message}`, "");

	out.push("Design goals (held against, not asserted)");
	for (const goal of results.goals) {
		out.push(`  ${goal.met ? "met   " : "MISSED"}  ${goal.name}: ${goal.actual} (goal ${goal.target})`);
		if (goal.bottleneck) out.push(`          bottleneck: ${goal.bottleneck}`);
	}
	out.push("");
	const byMeasurement = Object.entries(results.non2xx.byMeasurement)
		.map(([name, counts]) => `${name} ${Object.values(counts).reduce((a, b) => a + b, 0)}`)
		.join(", ");
	out.push(
		results.non2xx.total === 0
			? `Non-2xx responses: 0${byMeasurement ? ` (${byMeasurement})` : ""}`
			: `WARNING: ${results.non2xx.total} non-2xx responses or network errors: ${JSON.stringify(results.non2xx.byMeasurement)}`,
	);
	return out.join("\n");
}
