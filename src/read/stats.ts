// GET /v1/stats: event counts, errors and durations per event name and bucket, D1's rollups merged
// with what the aggregator has not flushed yet.
import { EVENT_ROLLUP } from "../sinks/rollups.js";
import { MINUTE_RETENTION_MS } from "../aggregator/compaction.js";
import { authenticate } from "../http/auth.js";
import { invalidField, json } from "../shared/errors.js";
import { liveReports } from "./live.js";
import { currentUtcDay, parseRange, periodStart } from "./range.js";

export async function getStats(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const range = parseRange(new URL(request.url), ["minute", "hour", "day"], { granularity: "hour", range: currentUtcDay });
	const minutes = range.granularity === "minute";
	// Minutes older than the retention have been folded into hours: they no longer exist to report.
	if (minutes && Date.parse(range.from) < Date.now() - MINUTE_RETENTION_MS) {
		throw invalidField(
			"from",
			`minute granularity covers the last ${MINUTE_RETENTION_MS / 86_400_000} days; older stats are kept per hour`,
		);
	}
	const {
		reports: [rows],
	} = await liveReports(env, tenant, [{ spec: EVENT_ROLLUP, compacted: !minutes }], range.from, range.to, range.granularity);
	const items = rows!.map((row) => ({
		event: row.event as string,
		period: periodStart(row.bucket),
		count: row.count as number,
		errors: row.errors as number,
		duration: {
			count: row.duration_count as number,
			sum: row.duration_sum as number,
			min: row.duration_min as number | null,
			max: row.duration_max as number | null,
		},
	}));
	return json({ tenant, ...range, items });
}
