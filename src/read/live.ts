// Reads that include what the aggregator holds but has not flushed yet, merged with D1 exactly once:
// a report is visible as soon as its events are aggregated, not when the next flush lands.
import type { PendingSnapshot } from "../aggregator/snapshot.js";
import { fromSql, mergeInto, RowMerge, type RollupRow, type RollupSpec } from "../sinks/rollups.js";
import {
	BUCKET_PREFIX,
	ledgerStatement,
	packedReport,
	rollupReport,
	type Granularity,
	type KeyFilter,
	type ReportOptions,
	type ReportPage,
} from "../sinks/d1/rollups.js";
import { ApiError } from "../shared/errors.js";
import { compareCodePoints } from "../shared/order.js";

/** Snapshots retried when a flush lands between the snapshot and the D1 read. */
const MAX_ATTEMPTS = 5;

/** One report row: the bucket prefix plus the spec's keys and measures (the time key holds the bucket's start). */
export type ReportRow = RollupRow & { bucket: string };

export interface LiveQuery extends ReportOptions {
	spec: RollupSpec;
}

export interface LiveReports {
	reports: ReportRow[][];
	/** With a page: the last page value this answer holds when another page follows, else null. */
	nextCursor: string | null;
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
 * aggregator's unflushed ones, in [from, to). With a page, every report holds the same page values.
 */
export async function liveReports(
	env: Env,
	tenant: string,
	queries: LiveQuery[],
	from: string,
	to: string,
	granularity: Granularity,
): Promise<LiveReports> {
	return consistentRead(
		env,
		tenant,
		queries.map((q) => q.spec.name),
		from,
		to,
		{},
		queries.map((q) => rollupReport(env.DB, q.spec, tenant, from, to, granularity, q)),
		(d1, pending) => {
			const reports = queries.map((q, i) => {
				const keys = q.keys ?? q.spec.keys.filter((key) => key !== q.spec.time);
				const rows = (pending[q.spec.name] ?? []).filter((row) => passes(row, q));
				return merge(q.spec, keys, d1[i]!, rows, BUCKET_PREFIX[granularity]);
			});
			const page = queries.find((q) => q.page)?.page;
			return page ? cutPage(reports, d1, page) : { reports, nextCursor: null };
		},
	);
}

/**
 * A packed rollup's rows in [from, to) that pass `where`, D1's and the aggregator's unflushed
 * ones, merged per full key (their measures merge in JavaScript, so callers group them). The
 * aggregator's rows may need another filter (`pendingWhere`): it holds the series' minutes only.
 */
export async function livePackedRows(
	env: Env,
	tenant: string,
	spec: RollupSpec,
	from: string,
	to: string,
	where: KeyFilter,
	options: { pendingWhere?: KeyFilter } = {},
): Promise<RollupRow[]> {
	const statement = packedReport(env.DB, spec, tenant, from, to, where);
	return consistentRead(env, tenant, [spec.name], from, to, options.pendingWhere ?? where, [statement], (d1, pending) => {
		const rows = new Map<string, RollupRow>();
		mergeInto(spec, rows, [...d1[0]!.map((raw) => fromSql(spec, raw)), ...(pending[spec.name] ?? [])]);
		return [...rows.values()];
	});
}

/**
 * Takes a snapshot of the aggregator's unflushed rows, then D1's rows and its ledger in one D1
 * transaction, and hands both to `combine` with the snapshot's rows that D1 does not hold yet.
 * A flush that lands in between makes the snapshot stale, and the read is taken again.
 */
async function consistentRead<T>(
	env: Env,
	tenant: string,
	specs: RollupSpec["name"][],
	from: string,
	to: string,
	where: KeyFilter,
	statements: D1PreparedStatement[],
	combine: (d1: Record<string, unknown>[][], pending: Partial<Record<RollupSpec["name"], RollupRow[]>>) => T,
): Promise<T> {
	const stub = env.AGGREGATOR.getByName(tenant);
	for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		const snapshot = (await stub.pending(specs, from, to, where)) as PendingSnapshot;
		const results = await env.DB.batch<Record<string, unknown>>([...statements, ledgerStatement(env.DB, tenant)]);
		const ledger = (results[results.length - 1]!.results as { flush_id: string }[]).map((row) => row.flush_id);
		const { stale, committed } = reconcile(snapshot, ledger);
		if (stale) continue;
		const pending: Partial<Record<RollupSpec["name"], RollupRow[]>> = {};
		for (const name of specs) {
			pending[name] = (snapshot.rows[name] ?? []).filter((entry) => !committed.has(entry.batch)).map((entry) => entry.row);
		}
		return combine(
			results.slice(0, -1).map((result) => result.results),
			pending,
		);
	}
	throw new ApiError(503, "The aggregator is flushing faster than this report can be read; retry", { headers: { "retry-after": "1" } });
}

/** Whether an unflushed row belongs in a report: its `where` values, and after the page's cursor. */
function passes(row: RollupRow, query: LiveQuery): boolean {
	for (const [key, wanted] of Object.entries(query.where ?? {}))
		if (Array.isArray(wanted) ? !wanted.includes(row[key] as string) : row[key] !== wanted) return false;
	const page = query.page;
	return !page || page.after === null || compareCodePoints(String(row[page.key]), page.after) > 0;
}

/**
 * Keeps the first `limit` page values of D1's and the unflushed rows together. D1 was asked for
 * one value more than the limit: when it has that many, unflushed values past its limit-th wait
 * for a later page, since D1 may hold values before them it did not return.
 */
function cutPage(reports: ReportRow[][], d1: Record<string, unknown>[][], page: ReportPage): LiveReports {
	const stored = [...new Set(d1.flatMap((rows) => rows.map((row) => String(row[page.key]))))].sort(compareCodePoints);
	const all = [...new Set(reports.flatMap((rows) => rows.map((row) => String(row[page.key]))))].sort(compareCodePoints);
	const ceiling = stored.length > page.limit ? stored[page.limit - 1]! : null;
	const candidates = ceiling === null ? all : all.filter((value) => compareCodePoints(value, ceiling) <= 0);
	const kept = new Set(candidates.slice(0, page.limit));
	const more = ceiling !== null || candidates.length > page.limit;
	return {
		reports: reports.map((rows) => rows.filter((row) => kept.has(String(row[page.key])))),
		nextCursor: more && kept.size > 0 ? [...kept].at(-1)! : null,
	};
}

/** D1's grouped rows plus pending rows grouped the same way, in bucket and key order. */
function merge(
	spec: RollupSpec,
	keys: readonly string[],
	d1: Record<string, unknown>[],
	pending: RollupRow[],
	prefix: number,
): ReportRow[] {
	const rows = new Map<string, ReportRow>();
	const merging = new RowMerge(spec);
	const add = (row: ReportRow) => {
		const key = JSON.stringify([row.bucket, ...keys.map((k) => row[k])]);
		const existing = rows.get(key);
		if (existing) merging.into(existing, row);
		else rows.set(key, row);
	};
	for (const raw of d1) add(fromReport(spec, keys, raw));
	for (const row of pending) {
		const bucket = String(row[spec.time]).slice(0, prefix);
		const grouped: ReportRow = { bucket, [spec.time]: bucket };
		for (const key of keys) grouped[key] = row[key] ?? null;
		for (const measure of Object.keys(spec.measures)) grouped[measure] = row[measure] ?? null;
		add(grouped);
	}
	merging.finish();
	return [...rows.values()].sort((a, b) => compare(keys, a, b));
}

/** A grouped D1 row: its time key holds the bucket, as a pending row's does after grouping. */
function fromReport(spec: RollupSpec, keys: readonly string[], raw: Record<string, unknown>): ReportRow {
	const row = fromSql(spec, { ...raw, [spec.time]: raw.bucket });
	for (const key of spec.keys) if (key !== spec.time && !keys.includes(key)) delete row[key];
	return { ...row, bucket: raw.bucket as string };
}

function compare(keys: readonly string[], a: ReportRow, b: ReportRow): number {
	if (a.bucket !== b.bucket) return a.bucket < b.bucket ? -1 : 1;
	for (const key of keys) {
		const order = compareCodePoints(String(a[key]), String(b[key]));
		if (order !== 0) return order;
	}
	return 0;
}
