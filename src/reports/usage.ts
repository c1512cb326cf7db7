// GET /v1/usage: exact usage per sku and bucket from D1, the billing source of truth.
import { authenticate } from "../auth/keys";
import { usageReport } from "../db/queries";
import { json } from "../http/errors";
import { formatMicros } from "../events/quantity";
import { currentUtcMonth, parseRange, periodStart } from "./range";

export async function getUsage(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const range = parseRange(new URL(request.url), ["hour", "day", "month"], { granularity: "day", range: currentUtcMonth });
	const rows = await usageReport(env.DB, tenant, range.from, range.to, range.granularity);
	const items = rows.map((row) => ({
		sku: row.sku,
		unit: row.unit,
		period: periodStart(row.bucket),
		// The sum is exact in D1; as a JSON number it is exact up to 15 significant digits.
		quantity: formatMicros(row.micros),
		events: row.events,
	}));
	if (/\btext\/csv\b/i.test(request.headers.get("accept") ?? "")) {
		const lines = ["period,sku,unit,quantity,events", ...items.map((i) => [i.period, csv(i.sku), csv(i.unit), i.quantity, i.events].join(","))];
		return new Response(lines.join("\r\n") + "\r\n", { headers: { "content-type": "text/csv; charset=utf-8" } });
	}
	return json({ tenant, ...range, items: items.map((item) => ({ ...item, quantity: Number(item.quantity) })) });
}

/** RFC 4180 quoting, and a leading quote for cells a spreadsheet would run as a formula. */
function csv(value: string): string {
	const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
	return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
