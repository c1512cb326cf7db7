// Reads that include what the aggregator holds but has not flushed yet, merged with D1 exactly once:
// a report is visible as soon as its events are aggregated, not when the next flush lands.
import type { PendingSnapshot } from "../aggregator/snapshot.js";
import { fromSql, mergeRow, rowKey, type RollupRow, type RollupSpec } from "../sinks/rollups.js";
import { BUCKET_PREFIX, ledgerStatement, rollupReport, type Granularity } from "../sinks/d1/rollups.js";
import { ApiError } from "../shared/errors.js";

/** Snapshots retried when a flush lands between the snapshot and the D1 read. */
const MAX_ATTEMPTS = 5;

/** One report row: the bucket prefix plus the spec's keys and measures (the time key holds the bucket's start). */
export type ReportRow = RollupRow & { bucket: string };

export interface LiveQuery {
	spec: RollupSpec;
	/** The D1 rows folded into the coarser table count too (false for minute granularity). */
	compacted?: boolean;
}

/**
 * What a read does with a snapshot, given the flush ids D1's ledger holds in the same transaction
 * as the report: a sealed head that D1 already committed is left out (D1 has it); any other
 * flush committed since the snapshot makes it stale, and the read is taken again.
 */
export function reconcile(
	snapshot: Pick<PendingSnapshot, "incarnation" | "nextBatch" | "sealed">,
	ledger: string[],
): { stale: boolean; committed: Set<number> } {
	const committed = new Set<number>();
	const [head, ...rest] = snapshot.sealed;
	for (const id of ledger) {
		const colon = id.lastIndexOf(":");
		if (id.slice(0, colon) !== snapshot.incarnation) continue;
		const batch = Number(id.slice(colon + 1));
		if (batch === head) committed.add(batch);
		else if (batch >= snapshot.nextBatch || rest.includes(batch)) return { stale: true, committed };
	}
	return { stale: false, committed };
}

/**
 * Reports over several rollups at once, each summed per bucket and key: D1's rows and the
 * aggregator's unflushed ones, in [from, to).
 */
export async function liveReports(
	env: Env,
	tenant: string,
	queries: LiveQuery[],
	from: string,
	to: string,
	granularity: Granularity,
): Promise<ReportRow[][]> {
	const stub = env.AGGREGATOR.getByName(tenant);
	for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		const snapshot = await stub.pending(
			queries.map((q) => q.spec.name),
			from,
			to,
		);
		const results = await env.DB.batch<Record<string, unknown>>([
			...queries.map((q) => rollupReport(env.DB, q.spec, tenant, from, to, granularity, q.compacted ?? true)),
			ledgerStatement(env.DB, tenant),
		]);
		const ledger = (results[results.length - 1]!.results as { flush_id: string }[]).map((row) => row.flush_id);
		const { stale, committed } = reconcile(snapshot, ledger);
		if (stale) continue;
		return queries.map(({ spec }, i) => {
			const pending = (snapshot.rows[spec.name] ?? []).filter((entry) => !committed.has(entry.batch)).map((entry) => entry.row);
			return merge(spec, results[i]!.results as Record<string, unknown>[], pending, BUCKET_PREFIX[granularity]);
		});
	}
	throw new ApiError(503, "The aggregator is flushing faster than this report can be read; retry", { headers: { "retry-after": "1" } });
}

/** D1's grouped rows plus pending rows grouped the same way, in bucket and key order. */
function merge(spec: RollupSpec, d1: Record<string, unknown>[], pending: RollupRow[], prefix: number): ReportRow[] {
	const rows = new Map<string, ReportRow>();
	const add = (row: ReportRow) => {
		const key = JSON.stringify([row.bucket, rowKey(spec, row)]);
		const existing = rows.get(key);
		if (existing) mergeRow(spec, existing, row);
		else rows.set(key, row);
	};
	for (const raw of d1) add(fromReport(spec, raw));
	for (const row of pending) {
		const bucket = String(row[spec.time]).slice(0, prefix);
		add({ ...row, [spec.time]: bucket, bucket });
	}
	return [...rows.values()].sort((a, b) => compare(spec, a, b));
}

/** A grouped D1 row: its time key holds the bucket, as a pending row's does after grouping. */
function fromReport(spec: RollupSpec, raw: Record<string, unknown>): ReportRow {
	return { ...fromSql(spec, { ...raw, [spec.time]: raw.bucket }), bucket: raw.bucket as string };
}

function compare(spec: RollupSpec, a: ReportRow, b: ReportRow): number {
	if (a.bucket !== b.bucket) return a.bucket < b.bucket ? -1 : 1;
	for (const key of spec.keys) {
		if (key === spec.time) continue;
		const x = String(a[key]);
		const y = String(b[key]);
		if (x !== y) return x < y ? -1 : 1;
	}
	return 0;
}
