// GET /v1/usage: exact usage per sku and bucket, D1's rollups merged with what the aggregator has
// not flushed yet, plus adjustments: late usage for closed months, booked into the month it arrived in.
import { ADJUSTMENT_ROLLUP, USAGE_ROLLUP } from "../sinks/rollups.js";
import { authenticate } from "../http/auth.js";
import { formatMicros } from "../event/quantity.js";
import { json } from "../shared/errors.js";
import { liveReports } from "./live.js";
import { currentUtcMonth, parseRange, periodStart } from "./range.js";

export async function getUsage(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const range = parseRange(new URL(request.url), ["hour", "day", "month"], { granularity: "day", range: currentUtcMonth });
	const [usage, adjustments] = await liveReports(
		env,
		tenant,
		[{ spec: USAGE_ROLLUP }, { spec: ADJUSTMENT_ROLLUP }],
		range.from,
		range.to,
		range.granularity,
	);
	const items = usage!.map((row) => ({
		sku: row.sku as string,
		unit: row.unit as string,
		period: periodStart(row.bucket),
		quantity: formatMicros(row.micros as string),
		events: row.events as number,
	}));
	const adjusted = adjustments!.map((row) => ({
		sku: row.sku as string,
		unit: row.unit as string,
		period: periodStart(row.bucket),
		adjustmentFor: row.period as string,
		quantity: formatMicros(row.micros as string),
		events: row.events as number,
	}));
	if (/\btext\/csv\b/i.test(request.headers.get("accept") ?? "")) {
		const lines = [
			"period,sku,unit,quantity,events,adjustment_for",
			...items.map((i) => [i.period, csv(i.sku), csv(i.unit), i.quantity, i.events, ""].join(",")),
			...adjusted.map((i) => [i.period, csv(i.sku), csv(i.unit), i.quantity, i.events, i.adjustmentFor].join(",")),
		];
		return new Response(lines.join("\r\n") + "\r\n", { headers: { "content-type": "text/csv; charset=utf-8" } });
	}
	// `quantityDecimal` is the exact sum; the JSON number beside it is exact up to 15 significant digits.
	const exact = <T extends { quantity: string }>(item: T) => ({
		...item,
		quantity: Number(item.quantity),
		quantityDecimal: item.quantity,
	});
	return json({ tenant, ...range, items: items.map(exact), adjustments: adjusted.map(exact) });
}

/** RFC 4180 quoting, and a leading quote for cells a spreadsheet would run as a formula. */
function csv(value: string): string {
	const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
	return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
