// The benchmark as a CI smoke test: `node src/bench/run.ts --quick` runs every measurement against
// the local pipeline and writes well-formed results. No timing is asserted: CI machines vary.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PRICES } from "../../src/bench/cost";
import type { BenchResults } from "../../src/bench/results";

const root = path.resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(path.join(tmpdir(), "meterline-bench-"));
const out = path.join(dir, "results.json");
let run: { status: number | null; stdout: string; stderr: string };
let results: BenchResults;

const positive = (value: unknown) => typeof value === "number" && Number.isFinite(value) && value > 0;
const finite = (value: unknown) => typeof value === "number" && Number.isFinite(value) && value >= 0;

beforeAll(() => {
	run = spawnSync(process.execPath, ["src/bench/run.ts", "--quick", `--out=${out}`], { cwd: root, encoding: "utf8", timeout: 240_000 });
	if (existsSync(out)) results = JSON.parse(readFileSync(out, "utf8")) as BenchResults;
}, 250_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("npm run bench -- --quick", () => {
	it("runs every measurement without an error and prints the report", () => {
		expect(run.status, run.stderr).toBe(0);
		expect(results, `no ${out}`).toBeDefined();
		expect(results.errors).toEqual({});
		for (const heading of [
			"1. Ingest",
			"2. End-to-end",
			"3. Freshness",
			"4. Platform operations",
			"5. Cost per million events",
			"6. Client overhead",
			"7. Aggregator scale",
			"8. Meters",
			"9. Archive and forwarding",
			"Design goals",
		]) {
			expect(run.stdout).toContain(heading);
		}
	});

	it("records the machine, the versions and the date", () => {
		expect(results.mode).toBe("quick");
		expect(positive(results.machine.cpus)).toBe(true);
		expect(results.machine.cpuModel).not.toBe("");
		expect(results.versions.node).toBe(process.version);
		expect(results.versions.wrangler).toMatch(/^\d+\.\d+\.\d+/);
		expect(Number.isNaN(Date.parse(results.date))).toBe(false);
		expect(positive(results.durationSeconds)).toBe(true);
	});

	it("measures ingest at batch 1, 100 and 1000, fire-and-forget and durable, with no non-2xx answer", () => {
		const runs = results.measurements.ingest!.runs;
		expect(runs.map((r) => `${r.batch}/${r.ack}`).sort()).toEqual([
			"1/durable",
			"1/fire-and-forget",
			"100/durable",
			"100/fire-and-forget",
			"1000/durable",
			"1000/fire-and-forget",
		]);
		for (const r of runs) {
			for (const value of [r.latencyMs.p50, r.latencyMs.p99, r.latencyMs.max, r.requestsPerSecond, r.eventsPerSecond, r.requests])
				expect(positive(value)).toBe(true);
			expect(r.latencyMs.p50).toBeLessThanOrEqual(r.latencyMs.max);
		}
		expect(results.non2xx.total).toBe(0);
	});

	it("measures end-to-end throughput for 1 and 100 tenants", () => {
		const runs = results.measurements.e2e!.runs;
		expect(runs.map((r) => r.tenants)).toEqual([1, 100]);
		for (const r of runs)
			for (const value of [r.events, r.seconds, r.eventsPerSecond, r.sendSeconds, r.aggregatorRpcs, r.eventsPerRpc])
				expect(positive(value)).toBe(true);
	});

	it("measures freshness percentiles over every sample", () => {
		const freshness = results.measurements.freshness!;
		expect(freshness.samples).toBeGreaterThan(1);
		for (const value of Object.values(freshness.latencyMs)) expect(positive(value)).toBe(true);
		expect(freshness.latencyMs.p50).toBeLessThanOrEqual(freshness.latencyMs.p99);
	});

	it("counts platform operations at batch 1 and 100, consistent with what was sent", () => {
		const scenarios = results.measurements.operations!.scenarios;
		expect(scenarios.map((s) => s.batch)).toEqual([1, 100]);
		for (const s of scenarios) {
			expect(s.checks).toEqual({ httpRequestsMatchSent: true, queueMessagesMatchEstimate: true });
			for (const name of [
				"workerRequests",
				"queueMessages",
				"queueChunks",
				"aggregatorRpcs",
				"alarms",
				"sqliteRowsWritten",
				"d1RowsWritten",
				"analyticsPoints",
			] as const) {
				expect(positive(s.per1000[name]), name).toBe(true);
			}
		}
	});

	it("prices every cost line and names the dominant one", () => {
		const cost = results.measurements.cost!;
		for (const scenario of cost.scenarios) {
			expect(Object.keys(scenario.perMillionEvents).sort()).toEqual(Object.keys(PRICES).sort());
			for (const value of Object.values(scenario.perMillionEvents)) expect(finite(value)).toBe(true);
			expect(positive(scenario.totalPerMillionEvents)).toBe(true);
			expect(Object.keys(PRICES)).toContain(scenario.dominant);
		}
		expect(Object.keys(cost.peers).length).toBe(2);
	});

	it("times Meterline's track() beside posthog-node and Segment", () => {
		const client = results.measurements.client!;
		expect(client.sdks.map((sdk) => sdk.name)).toEqual(["Meterline", "posthog-node", "@segment/analytics-node"]);
		for (const sdk of client.sdks) {
			expect(positive(sdk.nsPerCall)).toBe(true);
			expect(sdk.nsPerCallByRound).toHaveLength(client.rounds);
			expect(sdk.errors).toBe(0);
		}
		expect(positive(client.ratio)).toBe(true);
	});

	it("measures the aggregator at each checkpoint, with its storage", () => {
		const scale = results.measurements.aggregator!;
		expect(scale.checkpoints.map((c) => c.events)).toEqual([10_000, 50_000]);
		for (const c of scale.checkpoints)
			for (const value of [c.seconds, c.storageBytes, c.bytesPerEvent, c.segment.eventsPerSecond, c.segment.msPer10k])
				expect(positive(value)).toBe(true);
		expect(scale.chunkMs).toHaveLength(scale.events / scale.chunkEvents);
		for (const value of [scale.growth, scale.slowestOverMean]) expect(positive(value)).toBe(true);
	});

	it("measures 10 meters beside none, alternating, and the query latency of a month of hourly data", () => {
		const meters = results.measurements.meters!;
		expect(meters.runs.map((r) => `${r.kind}/${r.round}`)).toEqual(["none/1", "meters/1", "none/2", "meters/2"]);
		expect(meters.definitions).toHaveLength(10);
		for (const d of meters.definitions) expect(Object.keys(d.groupBy).length).toBeGreaterThan(0);
		expect(meters.evaluatedPerEvent).toBe(10);
		expect(meters.matchedPerEvent).toBe(2);
		const events = meters.runs[0]!.events;
		for (const r of meters.runs) {
			expect(r.meters).toBe(r.kind === "none" ? 0 : 10);
			expect(r.events).toBe(events);
			expect(r.batch).toBe(100);
			expect(r.flushes).toBeGreaterThan(0);
			for (const value of [
				r.seconds,
				r.eventsPerSecond,
				r.sendSeconds,
				r.acceptedPerSecond,
				r.aggregatorRpcs,
				r.sqliteRowsWritten,
				r.d1RowsWritten,
			])
				expect(positive(value)).toBe(true);
			expect(finite(r.settleSeconds)).toBe(true);
			expect(r.seconds).toBeCloseTo(r.sendSeconds + r.settleSeconds, 6);
			expect(r.eventsPerSecond).toBeCloseTo(r.events / r.seconds, 6);
			expect(r.sqliteRowsPerEvent).toBeCloseTo(r.sqliteRowsWritten / r.events, 9);
			expect(r.d1RowsPerEvent).toBeCloseTo(r.d1RowsWritten / r.events, 9);
			expect(r.non2xx).toEqual({});
		}
		for (const summary of [meters.none, meters.withMeters]) {
			expect(summary.runs).toBe(2);
			for (const value of [summary.eventsPerSecond, summary.acceptedPerSecond, summary.sqliteRowsPerEvent, summary.d1RowsPerEvent])
				expect(positive(value)).toBe(true);
		}
		expect(meters.throughputRatio).toBeCloseTo(meters.withMeters.eventsPerSecond / meters.none.eventsPerSecond, 9);
		expect(Number.isFinite(meters.extraSqliteRowsPerEvent)).toBe(true);
		expect(Number.isFinite(meters.extraD1RowsPerEvent)).toBe(true);

		const query = meters.query;
		expect(query.events).toBe(query.hours * query.eventsPerHour);
		for (const q of [query.meter, query.timeseries]) {
			expect(q.ok).toBe(q.queries);
			expect(q.empty).toBe(0);
			expect(q.non2xx).toEqual({});
			expect(positive(q.points)).toBe(true);
			for (const value of Object.values(q.latencyMs)) expect(positive(value)).toBe(true);
			expect(q.latencyMs.p50).toBeLessThanOrEqual(q.latencyMs.p99);
		}
		// Every hour of the month has data; a day interval answers each day of it.
		expect(query.meter.points).toBeGreaterThanOrEqual(query.hours);
		expect(query.timeseries.points).toBeGreaterThanOrEqual(query.hours / 24);
	});

	it("measures end-to-end throughput with the archive off, on, and on with one forwarding destination, alternating", () => {
		const archive = results.measurements.archive!;
		const kinds = archive.forwardUnavailable === null ? ["off", "archive", "forward"] : ["off", "archive"];
		expect(archive.runs.map((r) => `${r.kind}/${r.round}`)).toEqual([1, 2].flatMap((round) => kinds.map((kind) => `${kind}/${round}`)));
		expect(archive.intervalMs).toBe(1000);
		const events = archive.runs[0]!.events;
		for (const r of archive.runs) {
			expect(r.events).toBe(events);
			expect(r.batch).toBe(100);
			for (const value of [r.seconds, r.eventsPerSecond, r.sendSeconds, r.acceptedPerSecond, r.sqliteRowsWritten])
				expect(positive(value)).toBe(true);
			expect(finite(r.settleSeconds)).toBe(true);
			expect(r.seconds).toBeCloseTo(r.sendSeconds + r.settleSeconds, 6);
			expect(r.eventsPerSecond).toBeCloseTo(r.events / r.seconds, 6);
			expect(r.acceptedPerSecond).toBeCloseTo(r.events / r.sendSeconds, 6);
			expect(r.sqliteRowsPerEvent).toBeCloseTo(r.sqliteRowsWritten / r.events, 9);
			expect(r.non2xx).toEqual({});
			if (r.kind === "off") {
				expect([r.archivedSeconds, r.forwardedSeconds, r.parts, r.archiveBytes]).toEqual([null, null, 0, 0]);
			} else {
				// Every event reaches R2 (and the webhook) after the first POST; each part holds some.
				expect(r.archivedSeconds!).toBeGreaterThan(0);
				expect(positive(r.parts)).toBe(true);
				expect(r.parts).toBeLessThanOrEqual(r.events);
				expect(positive(r.archiveBytes)).toBe(true);
				if (r.kind === "forward") expect(r.forwardedSeconds!).toBeGreaterThan(0);
				else expect(r.forwardedSeconds).toBeNull();
			}
		}
		for (const summary of [archive.off, archive.archive, ...(archive.forward ? [archive.forward] : [])]) {
			expect(summary.runs).toBe(2);
			for (const value of [summary.eventsPerSecond, summary.acceptedPerSecond, summary.sqliteRowsPerEvent])
				expect(positive(value)).toBe(true);
		}
		expect(archive.forward === null).toBe(archive.forwardUnavailable !== null);
		expect(archive.throughputRatio).toBeCloseTo(archive.archive.eventsPerSecond / archive.off.eventsPerSecond, 9);
		expect(archive.acceptedRatio).toBeCloseTo(archive.archive.acceptedPerSecond / archive.off.acceptedPerSecond, 9);
		const archived = archive.runs.filter((r) => r.kind !== "off");
		const total = (pick: (r: (typeof archived)[number]) => number) => archived.reduce((sum, r) => sum + pick(r), 0);
		expect(archive.bytesPerEvent).toBeCloseTo(total((r) => r.archiveBytes) / total((r) => r.events), 9);
		expect(archive.eventsPerPart).toBeCloseTo(total((r) => r.events) / total((r) => r.parts), 9);
		expect(archive.fullPartEvents).toBe(Math.floor(4_000_000 / archive.jsonCharsPerEvent));
		expect(archive.partsPerMillionEvents).toBeCloseTo(1e6 / archive.fullPartEvents, 9);
		expect(archive.r2.classAUsdPerMillionEvents).toBeCloseTo((archive.partsPerMillionEvents * 4.5) / 1e6, 12);
		expect(archive.r2.storageUsdPerMillionEventsMonth).toBeCloseTo((archive.bytesPerEvent / 1000) * 0.015, 12);

		// The cost table prices the archive's R2 writes and storage for each scenario's events.
		for (const scenario of results.measurements.cost!.scenarios) {
			expect(scenario.perMillionEvents.r2ClassA).toBeCloseTo(archive.r2.classAUsdPerMillionEvents, 12);
			expect(scenario.perMillionEvents.r2Storage).toBeCloseTo(archive.r2.storageUsdPerMillionEventsMonth, 12);
		}
		expect(run.stdout).toContain("R2 per million events:");
	});

	it("holds the figures against every design goal", () => {
		expect(results.goals.map((goal) => goal.name)).toEqual([
			"client track() cost",
			"end-to-end throughput",
			"freshness p99 (default settings)",
			"D1 rows written per event (client batch 100)",
			"Durable Object SQLite rows written per event (client batch 100)",
			"cost per million events (client batch 100)",
			"10 meters: end-to-end throughput",
			"10 meters: extra SQLite rows per event at batch 100",
			"archive: end-to-end throughput",
		]);
		for (const goal of results.goals) {
			expect(typeof goal.met).toBe("boolean");
			if (!goal.met) expect(goal.bottleneck).toBeTruthy();
		}
	});
});
