// The report query: a [from, to) UTC range and a bucket size, with the same rules for every report.
import type { Granularity } from "../sinks/d1/rollups.js";
import { parseIsoInstant } from "../shared/time.js";
import { invalidField } from "../shared/errors.js";
import { onlyQuery } from "../http/params.js";

const BUCKET_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000, month: 31 * 86_400_000 };
/** A report returns at most this many buckets per series, so one query stays cheap. */
export const MAX_BUCKETS = 10_000;

export interface ReportRange {
	from: string;
	to: string;
	granularity: Granularity;
}

export function parseRange(
	url: URL,
	allowed: readonly Granularity[],
	defaults: { granularity: Granularity; range: (now: Date) => [Date, Date] },
	otherParams: readonly string[] = [],
): ReportRange {
	onlyQuery(url, ["from", "to", "granularity", ...otherParams]);
	const granularity = (url.searchParams.get("granularity") ?? defaults.granularity) as Granularity;
	if (!allowed.includes(granularity)) throw invalidField("granularity", `must be one of ${allowed.join(", ")}`);
	const [defaultFrom, defaultTo] = defaults.range(new Date());
	const from = parseInstant(url.searchParams.get("from"), "from") ?? defaultFrom;
	const to = parseInstant(url.searchParams.get("to"), "to") ?? defaultTo;
	if (to <= from) throw invalidField("to", "must be after from");
	if ((to.getTime() - from.getTime()) / BUCKET_MS[granularity] > MAX_BUCKETS) {
		throw invalidField(
			"granularity",
			`the range holds more than ${MAX_BUCKETS} ${granularity} buckets; narrow it or use a coarser granularity`,
		);
	}
	return { from: from.toISOString(), to: to.toISOString(), granularity };
}

export function parseInstant(value: string | null, field: string): Date | undefined {
	if (value === null) return undefined;
	const ms = parseIsoInstant(value, true);
	if (Number.isNaN(ms)) throw invalidField(field, "must be an ISO 8601 date or date-time");
	return new Date(ms);
}

/** The ISO start of a bucket from the prefix D1 grouped by (2026-11, 2026-11-23T09, …). */
export function periodStart(bucket: string): string {
	const template = "0000-01-01T00:00:00.000Z";
	return bucket + template.slice(bucket.length);
}

export function currentUtcMonth(now: Date): [Date, Date] {
	return [
		new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
		new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
	];
}

export function currentUtcDay(now: Date): [Date, Date] {
	const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
	return [new Date(start), new Date(start + 86_400_000)];
}
