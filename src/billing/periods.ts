// Closed billing months: POST /v1/periods/:period/close (read key, or the admin for any tenant)
// freezes a month's usage and stores its invoices; late usage for it is booked as an adjustment
// into the month it arrives in.
import type { IRequest } from "itty-router";
import { authenticate, requireAdmin } from "../http/auth.js";
import { closedPeriods, insertClosedPeriod } from "../sinks/d1/periods.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { onlyQuery, pathParam } from "../http/params.js";
import { freezeInvoices, monthBounds } from "./invoices.js";

/** Closes `period` for `tenant`: the aggregator first (so nothing new is counted into it), then a flush, then D1. */
async function close(env: Env, tenant: string, period: string): Promise<Response> {
	const bounds = monthBounds(period);
	if (!bounds) throw invalidField("period", "must be a month, YYYY-MM");
	if (Date.now() < Date.parse(bounds.to))
		throw new ApiError(409, `${period} has not ended yet; a month can be closed once it is over`, {
			details: [{ path: "period", message: "has not ended" }],
		});
	let flushed: number;
	try {
		flushed = await env.AGGREGATOR.getByName(tenant).closePeriod(tenant, period);
	} catch (err) {
		console.error("closing a period failed", { tenant, period }, err);
		throw new ApiError(503, "The period could not be closed now (its usage could not be flushed); retry, closing is idempotent", {
			headers: { "retry-after": "5" },
		});
	}
	const closedAt = await insertClosedPeriod(env.DB, tenant, period, new Date().toISOString());
	// After the close is recorded, so no subscription can change the month any more: what is
	// stored is what every later read of the month's invoices answers.
	const invoices = await freezeInvoices(env, tenant, period);
	return json({ tenant, period, closedAt, flushed, invoices });
}

export async function closePeriod(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	return close(env, tenant, pathParam(request, "period"));
}

export async function adminClosePeriod(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	onlyQuery(new URL(request.url), []);
	const tenant = pathParam(request, "id");
	if (!(await env.DB.prepare("SELECT 1 FROM tenants WHERE id = ?1").bind(tenant).first())) throw new ApiError(404, `No tenant ${tenant}`);
	return close(env, tenant, pathParam(request, "period"));
}

export async function listPeriods(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const rows = await closedPeriods(env.DB, tenant);
	return json({ tenant, closed: rows.map((row) => ({ period: row.period, closedAt: row.closed_at })) });
}
