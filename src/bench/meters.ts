// 8. Meters: what tenant-defined meters cost. The same traffic (batches of 100, events of 50
// customers) goes end to end to fresh tenants with no meters and with 10 meters, each with a
// group-by, alternating none, meters, none, meters to spread the machine's noise; then the query
// latency of a month of hourly data, for one meter (GET /v1/meters/:slug/query) and for
// duration_p99 by day (GET /v1/query/timeseries).
import type { LocalPipeline, TenantKeys } from "../scripts/local-pipeline.ts";
import type { CpuUse } from "./cpu.ts";
import { deliver } from "./e2e.ts";
import { busy, cpuPerEvent, int, num, table } from "./format.ts";
import { measureQueries, type QueryResult } from "./meter-queries.ts";
import type { Progress } from "./progress.ts";
import { benchEvent, ControlPlane, EVENT_NAMES, totalOf, type StatusCounts } from "./support.ts";

export type MetersKind = "none" | "meters";

export interface MetersRun {
	kind: MetersKind;
	/** 1-based: the runs alternate none, meters, none, meters. */
	round: number;
	meters: number;
	events: number;
	batch: number;
	senders: number;
	/** End to end, as measurement 2: first POST until every event is in /v1/usage. */
	seconds: number;
	eventsPerSecond: number;
	sendSeconds: number;
	settleSeconds: number;
	/** Events accepted per second while sending, the pipeline consuming at the same time. */
	acceptedPerSecond: number;
	/** Consumer RPCs to the tenant's aggregator (the benchmark's flushes left out). */
	aggregatorRpcs: number;
	/** POST /v1/flush calls: while settling, and one after, so D1 holds everything. */
	flushes: number;
	/** The tenant's aggregator counters (GET /v1/admin/operations), from after the meters were created. */
	sqliteRowsWritten: number;
	sqliteRowsPerEvent: number;
	d1RowsWritten: number;
	d1RowsPerEvent: number;
	/** Microseconds of workerd CPU (all threads) per event, over the whole run. */
	workerdUsPerEvent?: number;
	cpu?: CpuUse;
	sendCpu?: CpuUse;
	non2xx: StatusCounts;
}

/** The mean of a kind's runs. */
export interface MetersSummary {
	kind: MetersKind;
	meters: number;
	runs: number;
	eventsPerSecond: number;
	acceptedPerSecond: number;
	sqliteRowsPerEvent: number;
	d1RowsPerEvent: number;
	workerdUsPerEvent?: number;
	/** The busiest workerd thread's share while sending. */
	busiestThreadShare?: number;
}

export interface MetersResult {
	customers: number;
	definitions: { slug: string; eventType: string; aggregation: string; groupBy: Record<string, string> }[];
	/** Meters each event is evaluated against, and how many of them count it (its event type's). */
	evaluatedPerEvent: number;
	matchedPerEvent: number;
	runs: MetersRun[];
	none: MetersSummary;
	withMeters: MetersSummary;
	/** Mean end-to-end events/s with meters ÷ without. */
	throughputRatio: number;
	extraSqliteRowsPerEvent: number;
	extraD1RowsPerEvent: number;
	query: QueryResult;
	notes: string[];
}

export interface MetersOptions {
	events: number;
	senders: number;
	rounds: number;
	queries: number;
	hours: number;
	eventsPerHour: number;
}

const BATCH = 100;
const CUSTOMERS = 50;
const AGGREGATIONS = ["COUNT", "SUM", "MIN", "MAX", "AVG", "LATEST", "UNIQUE_COUNT", "COUNT", "SUM", "UNIQUE_COUNT"] as const;
const GROUPS: Record<string, string>[] = [{ plan: "plan" }, { path: "$.path" }, { sku: "usage.sku" }, { referrer: "referrer" }];

/** 10 meters: event types cycling over the 5 names (each event matches 2), each with one group-by. */
export const BENCH_METERS = AGGREGATIONS.map((aggregation, i) => ({
	slug: `bench_${aggregation.toLowerCase()}_${i}`,
	eventType: EVENT_NAMES[i % EVENT_NAMES.length]!,
	aggregation,
	...(aggregation === "COUNT" ? {} : { valueProperty: aggregation === "UNIQUE_COUNT" ? "path" : "usage.quantity" }),
	groupBy: GROUPS[i % GROUPS.length]!,
}));

/** The 5 bodies the runs cycle through: event i is customer (k + i) mod 50, so each customer sends every event name. */
function bodies(sku: string): string[] {
	return Array.from({ length: 5 }, (_, k) =>
		JSON.stringify({
			events: Array.from({ length: BATCH }, (_, i) => benchEvent(i, { sku, customerId: `customer-${(k + i) % CUSTOMERS}` })),
		}),
	);
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

async function tenantOps(control: ControlPlane, tenant: TenantKeys) {
	const mine = (await control.operations()).tenants.find((t) => t.tenant === tenant.id);
	if (!mine) throw new Error(`GET /v1/admin/operations has no tenant ${tenant.id}`);
	return mine;
}

export async function measureMeters(pipeline: LocalPipeline, progress: Progress, options: MetersOptions): Promise<MetersResult> {
	const control = new ControlPlane(pipeline);
	const kinds: MetersKind[] = Array.from({ length: options.rounds }, () => ["none", "meters"] as const).flat();
	const share = 0.8 / kinds.length;
	const runs: MetersRun[] = [];
	for (const [index, kind] of kinds.entries()) {
		const round = Math.floor(index / 2) + 1;
		const label = `${kind === "none" ? "no meters" : "10 meters"}, run ${round}`;
		const step = (fraction: number, detail: string) => progress.update((index + fraction) * share, `${label}: ${detail}`);
		step(0, "creating the tenant");
		const tenant = await control.createTenant(`bench-meters-${kind}-${round}`);
		const meters = kind === "none" ? [] : BENCH_METERS;
		for (const meter of meters) await control.json("/v1/meters", { method: "POST", key: tenant.readKey, body: JSON.stringify(meter) });
		const before = await tenantOps(control, tenant);
		const sku = `meters-${kind}-${round}`;
		const sent = bodies(sku);
		const run = await deliver(control, [tenant], {
			requests: Math.ceil(options.events / BATCH),
			batch: BATCH,
			senders: options.senders,
			sku,
			body: (r) => sent[r % sent.length]!,
			label,
			step,
		});
		// One more flush, outside the timing, so D1 holds every row before the counters are read.
		await control.flush(tenant);
		const after = await tenantOps(control, tenant);
		const flushes = run.flushes + 1;
		const sqlite = after.sqlite_rows_written - before.sqlite_rows_written;
		const d1 = after.d1_rows_written - before.d1_rows_written;
		runs.push({
			kind,
			round,
			meters: meters.length,
			events: run.events,
			batch: BATCH,
			senders: options.senders,
			seconds: run.seconds,
			eventsPerSecond: run.events / run.seconds,
			sendSeconds: run.sendSeconds,
			settleSeconds: run.settleSeconds,
			acceptedPerSecond: run.events / run.sendSeconds,
			aggregatorRpcs: after.rpc_calls - before.rpc_calls - flushes,
			flushes,
			sqliteRowsWritten: sqlite,
			sqliteRowsPerEvent: sqlite / run.events,
			d1RowsWritten: d1,
			d1RowsPerEvent: d1 / run.events,
			...(run.cpu && { workerdUsPerEvent: cpuPerEvent(run.cpu, run.events) }),
			cpu: run.cpu,
			sendCpu: run.sendCpu,
			non2xx: run.non2xx,
		});
	}
	const summary = (kind: MetersKind): MetersSummary => {
		const mine = runs.filter((run) => run.kind === kind);
		const cpus = mine.flatMap((run) => (run.workerdUsPerEvent === undefined ? [] : [run.workerdUsPerEvent]));
		const shares = mine.flatMap((run) => (run.sendCpu ? [run.sendCpu.busiestThreadShare] : []));
		return {
			kind,
			meters: mine[0]!.meters,
			runs: mine.length,
			eventsPerSecond: mean(mine.map((run) => run.eventsPerSecond)),
			acceptedPerSecond: mean(mine.map((run) => run.acceptedPerSecond)),
			sqliteRowsPerEvent: mean(mine.map((run) => run.sqliteRowsPerEvent)),
			d1RowsPerEvent: mean(mine.map((run) => run.d1RowsPerEvent)),
			...(cpus.length === mine.length && { workerdUsPerEvent: mean(cpus) }),
			...(shares.length === mine.length && { busiestThreadShare: mean(shares) }),
		};
	};
	const none = summary("none");
	const withMeters = summary("meters");
	const matched = mean(EVENT_NAMES.map((name) => BENCH_METERS.filter((meter) => meter.eventType === name).length));

	progress.update(0.8, "query latency: seeding a month of hourly data");
	const query = await measureQueries(control, { ...options, customers: CUSTOMERS }, (fraction, detail) =>
		progress.update(0.8 + 0.2 * fraction, detail),
	);
	return {
		customers: CUSTOMERS,
		definitions: BENCH_METERS.map(({ slug, eventType, aggregation, groupBy }) => ({ slug, eventType, aggregation, groupBy })),
		evaluatedPerEvent: BENCH_METERS.length,
		matchedPerEvent: matched,
		runs,
		none,
		withMeters,
		throughputRatio: withMeters.eventsPerSecond / none.eventsPerSecond,
		extraSqliteRowsPerEvent: withMeters.sqliteRowsPerEvent - none.sqliteRowsPerEvent,
		extraD1RowsPerEvent: withMeters.d1RowsPerEvent - none.d1RowsPerEvent,
		query,
		notes: [
			`Each run is a fresh single tenant on the shared pipeline, ${BATCH} events per POST from ${options.senders} senders; every event has one of ${CUSTOMERS} customerIds. The kinds alternate (none, meters, none, meters); each kind's figure is the mean of its ${options.rounds} runs.`,
			`The 10 meters cycle their eventType over the 5 event names, so each event is evaluated against ${BENCH_METERS.length} meters and counted by ${matched}; each meter groups by one of plan, path, usage.sku or referrer.`,
			"Accepted events/s is the ingest side: events accepted per second of sending, with the pipeline consuming (and folding) at the same time on the same cores.",
			"SQLite and D1 rows are the tenant's aggregator counters from after its meters were created until after a last flush, the settling flushes included.",
			`Query latency: one tenant with one meter, ${options.eventsPerHour} events in each of the last ${options.hours} hours sent through POST /v1/events and flushed; sequential queries after one untimed warm-up, timed until the whole answer is read.`,
		],
	};
}

/** The report's section 8 (report.ts stays under 300 lines). */
export function renderMeters(result: MetersResult): string[] {
	const { none, withMeters, query } = result;
	const events = result.runs[0]?.events ?? 0;
	const rowsPerRun = (kind: MetersKind, field: "sqliteRowsWritten" | "d1RowsWritten") =>
		mean(result.runs.filter((run) => run.kind === kind).map((run) => run[field]));
	const out = [
		`8. Meters: ${withMeters.meters} meters (each with a group-by) beside none; one fresh tenant per run, ${int(events)} events in batches of ${BATCH}, ${result.customers} customers, runs alternating`,
		table(
			[
				"meters",
				"run",
				"events",
				"seconds",
				"e2e events/s",
				"accepted/s (sending)",
				"SQLite rows/event",
				"D1 rows/event",
				"events/RPC",
				"workerd µs/event",
				"workerd thread (sending)",
				"non-2xx",
			],
			result.runs.map((run) => [
				String(run.meters),
				String(run.round),
				int(run.events),
				num(run.seconds, 2),
				int(run.eventsPerSecond),
				int(run.acceptedPerSecond),
				num(run.sqliteRowsPerEvent, 4),
				num(run.d1RowsPerEvent, 4),
				int(run.events / Math.max(1, run.aggregatorRpcs)),
				run.workerdUsPerEvent === undefined ? "n/a" : int(run.workerdUsPerEvent),
				busy(run.sendCpu),
				String(totalOf(run.non2xx)),
			]),
		),
		`   mean of the ${none.runs} runs per kind: end to end ${int(none.eventsPerSecond)} events/s without meters, ${int(withMeters.eventsPerSecond)} with ${withMeters.meters} (× ${num(result.throughputRatio, 2)}); accepted while sending ${int(none.acceptedPerSecond)} vs ${int(withMeters.acceptedPerSecond)} (× ${num(withMeters.acceptedPerSecond / none.acceptedPerSecond, 2)})`,
		`   SQLite rows per event ${num(none.sqliteRowsPerEvent, 4)} vs ${num(withMeters.sqliteRowsPerEvent, 4)} (${signed(result.extraSqliteRowsPerEvent, 5)} extra: ${signed(rowsPerRun("meters", "sqliteRowsWritten") - rowsPerRun("none", "sqliteRowsWritten"), 0)} rows per run), D1 rows per event ${num(none.d1RowsPerEvent, 4)} vs ${num(withMeters.d1RowsPerEvent, 4)} (${signed(result.extraD1RowsPerEvent, 4)}: ${signed(rowsPerRun("meters", "d1RowsWritten") - rowsPerRun("none", "d1RowsWritten"), 0)} rows per run)`,
		`   each event is evaluated against ${result.evaluatedPerEvent} meters and counted by ${num(result.matchedPerEvent, 0)} (event types cycle over the 5 names; ${[...new Set(result.definitions.map((d) => d.aggregation))].join(", ")}; grouped by ${[...new Set(result.definitions.flatMap((d) => Object.values(d.groupBy)))].join(", ")}); accepted/s = events accepted per second of sending while the pipeline consumes on the same cores`,
		"",
		`   Query latency over a month of hourly data (${query.eventsPerHour} events in each of the last ${query.hours} hours, ${int(query.events)} events, flushed; sequential, after one untimed warm-up)`,
		table(
			["query", "queries", "p50 ms", "p99 ms", "max ms", "points", "errors"],
			(
				[
					["meter SUM(usage.quantity) by plan, windowSize=HOUR", query.meter],
					["timeseries duration_p99, interval=day", query.timeseries],
				] as const
			).map(([label, q]) => [
				label,
				String(q.queries),
				num(q.latencyMs.p50, 1),
				num(q.latencyMs.p99, 1),
				num(q.latencyMs.max, 1),
				int(q.points),
				String(q.empty + totalOf(q.non2xx)),
			]),
			1,
		),
		...[query.meter, query.timeseries].flatMap((q) => (q.firstError ? [`   ${q.path}: first error ${q.firstError}`] : [])),
		"",
	];
	return out;
}

const signed = (n: number, digits: number) => `${n >= 0 ? "+" : "−"}${num(Math.abs(n), digits)}`;
