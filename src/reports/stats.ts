// GET /v1/stats: event counts, errors and durations per event name and bucket.
import { authenticate } from "../auth/keys";
import { statsReport } from "../db/queries";
import { json } from "../http/errors";
import { currentUtcDay, parseRange, periodStart } from "./range";

export async function getStats(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const range = parseRange(new URL(request.url), ["minute", "hour", "day"], { granularity: "hour", range: currentUtcDay });
	const rows = await statsReport(env.DB, tenant, range.from, range.to, range.granularity);
	const items = rows.map((row) => ({
		event: row.event,
		period: periodStart(row.bucket),
		count: row.count,
		errors: row.errors,
		duration: { count: row.duration_count, sum: row.duration_sum, min: row.duration_min, max: row.duration_max },
	}));
	return json({ tenant, ...range, items });
}
