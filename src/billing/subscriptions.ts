// Subscriptions: PUT /v1/customers/:id/subscription puts a customer on a plan version from a start
// on (replacing whatever the timeline said from then on), GET shows the timeline. Starts are whole
// UTC hours, since usage is kept per hour, and never reach into a closed month.
import type { IRequest } from "itty-router";
import { FIELD_LIMITS } from "../event/model.js";
import { authenticate } from "../http/auth.js";
import { readJson } from "../http/body.js";
import { onlyQuery, pathParam } from "../http/params.js";
import { replaceSubscriptionFrom, subscriptionTimeline, type SubscriptionRow } from "../sinks/d1/billing.js";
import { ApiError, invalidField, json, type FieldIssue } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";
import { parseIsoInstant } from "../shared/time.js";
import { findStoredPlan, loadPlans, versionParam } from "./plans.js";

const HOUR_MS = 3_600_000;
const FIELDS = new Set(["plan", "version", "startAt"]);

/** A stretch of time on one plan version: [from, to), `to` null while it lasts. */
export interface Segment {
	plan: { key: string; version: number };
	from: string;
	to: string | null;
}

/** The timeline's stretches on a plan (an ended subscription is a gap), clipped to [from, to) when given. */
export function segmentsOf(rows: readonly SubscriptionRow[], from?: string, to?: string): Segment[] {
	const segments: Segment[] = [];
	rows.forEach((row, i) => {
		if (row.plan_key === null) return;
		let start = row.start_at;
		let end = rows[i + 1]?.start_at ?? null;
		if (from !== undefined && to !== undefined) {
			if (start < from) start = from;
			if (end === null || end > to) end = to;
			if (start >= end) return;
		}
		segments.push({ plan: { key: row.plan_key, version: row.plan_version! }, from: start, to: end });
	});
	return segments;
}

/** The :id of the path: a customer id as events carry it. */
export function customerParam(request: IRequest): string {
	const customer = pathParam(request, "id");
	const { min, max } = FIELD_LIMITS.customerId;
	if (customer.length < min || customer.length > max) throw invalidField("id", `must be a customer id of ${min}-${max} characters`);
	return customer;
}

function presentTimeline(customer: string, rows: SubscriptionRow[]): Record<string, unknown> {
	const timeline = segmentsOf(rows).map((s) => ({ plan: s.plan.key, version: s.plan.version, startAt: s.from, endAt: s.to }));
	const now = new Date().toISOString();
	const current = timeline.find((s) => s.startAt <= now && (s.endAt === null || now < s.endAt)) ?? null;
	return { customerId: customer, current, timeline };
}

/** PUT /v1/customers/:id/subscription {plan, version?, startAt?}: plan null ends the subscription at startAt. */
export async function putSubscriptionRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const customer = customerParam(request);
	const body = await readJson(request, 4096);
	if (!isPlainObject(body)) throw invalidField("body", "must be a JSON object");
	const issues: FieldIssue[] = [];
	for (const key of Object.keys(body)) if (!FIELDS.has(key)) issues.push({ path: key, message: "unknown field" });
	if (issues.length > 0)
		throw new ApiError(400, `Invalid subscription: ${issues.map((i) => `${i.path} ${i.message}`).join("; ")}`, { details: issues });
	const { plan: key, startAt: startText } = body;
	if (key !== null && (typeof key !== "string" || key.length === 0))
		throw invalidField("plan", "must be a plan key, or null to end the subscription");
	const version = versionParam(body.version, "version");
	if (key === null && version !== null) throw invalidField("version", "cannot be given with plan null");
	if (startText !== undefined && typeof startText !== "string") throw invalidField("startAt", "must be an ISO 8601 date or date-time");
	const startMs = startText === undefined ? Math.floor(Date.now() / HOUR_MS) * HOUR_MS : parseIsoInstant(startText, true);
	if (Number.isNaN(startMs)) throw invalidField("startAt", "must be an ISO 8601 date or date-time");
	if (startMs % HOUR_MS !== 0) throw invalidField("startAt", "must be a whole UTC hour (usage is kept per hour)");
	const startAt = new Date(startMs).toISOString();

	let plan: { key: string; version: number } | null = null;
	if (key !== null) {
		const stored = await findStoredPlan(env.DB, tenant, key, version);
		if (!stored)
			throw version === null
				? invalidField("plan", `no plan ${key}`)
				: invalidField("version", `plan ${key} has no version ${version}`);
		plan = { key: stored.key, version: stored.version };
		// One invoice has one currency: every stretch of the month before startAt must share it.
		const monthStart = `${startAt.slice(0, 7)}-01T00:00:00.000Z`;
		const earlier = segmentsOf(await subscriptionTimeline(env.DB, tenant, customer), monthStart, startAt);
		for (const previous of (
			await loadPlans(
				env.DB,
				tenant,
				earlier.map((segment) => segment.plan),
			)
		).values()) {
			if (previous.plan.currency !== stored.plan.currency)
				throw new ApiError(
					409,
					`A change inside a month keeps its currency (${previous.plan.currency}); start the new plan on the 1st`,
					{
						details: [{ path: "startAt", message: "changes the currency inside a month" }],
					},
				);
		}
	}
	const written = await replaceSubscriptionFrom(env.DB, tenant, customer, startAt, plan, new Date().toISOString());
	if (!written)
		throw new ApiError(409, `${startAt.slice(0, 7)} or a later month is closed; a subscription cannot change a closed month`, {
			details: [{ path: "startAt", message: "is in or before a closed month" }],
		});
	return json(presentTimeline(customer, await subscriptionTimeline(env.DB, tenant, customer)));
}

/** GET /v1/customers/:id/subscription: the current stretch and the whole timeline; 404 when there is none. */
export async function getSubscriptionRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const customer = customerParam(request);
	const rows = await subscriptionTimeline(env.DB, tenant, customer);
	if (segmentsOf(rows).length === 0) throw new ApiError(404, `Customer ${customer} has no subscription`);
	return json(presentTimeline(customer, rows));
}
