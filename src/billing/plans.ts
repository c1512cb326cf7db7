// Plans: POST /v1/plans adds a version (the first for a new key), GET lists them, managed with a
// read key. A version never changes once written, so a subscription on it is priced the same way
// for good; a meter rate card keeps the meter's id, so a later meter with the same slug is not it.
import type { IRequest } from "itty-router";
import { authenticate } from "../http/auth.js";
import { readJson } from "../http/body.js";
import { onlyQuery, pathParam } from "../http/params.js";
import { SLUG, type StoredMeter } from "../meters/model.js";
import { onAggregator } from "../read/meters.js";
import { findPlan, insertPlanVersion, latestPlans, planVersions, plansByVersion, type PlanRow } from "../sinks/d1/billing.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { PLAN_KEY_RULE, PLAN_LIMITS, planFromJson, planToJson, validatePlan, type PlanDefinition } from "./plan-model.js";
import type { ResolvedMeter } from "./quantities.js";

/** A plan's JSON body; it also bounds the stored row. */
const MAX_PLAN_BYTES = 64 * 1024;

/** One version of a plan as stored, with its meter rate cards resolved. */
export interface StoredPlan {
	key: string;
	version: number;
	createdAt: string;
	plan: PlanDefinition;
	meters: Record<string, ResolvedMeter>;
}

export function planId(plan: { key: string; version: number }): string {
	return `${plan.key}@${plan.version}`;
}

function fromRow(row: PlanRow): StoredPlan {
	const stored = JSON.parse(row.definition) as { plan: unknown; meters: Record<string, ResolvedMeter> };
	return { key: row.key, version: row.version, createdAt: row.created_at, plan: planFromJson(stored.plan), meters: stored.meters };
}

function present(stored: StoredPlan): Record<string, unknown> {
	return { ...planToJson(stored.plan), version: stored.version, createdAt: stored.createdAt };
}

/** The plan versions named, by planId; a missing one is absent. */
export async function loadPlans(
	db: D1Database,
	tenant: string,
	wanted: { key: string; version: number }[],
): Promise<Map<string, StoredPlan>> {
	const unique = [...new Map(wanted.map((w) => [planId(w), w])).values()];
	const rows = await plansByVersion(db, tenant, unique);
	return new Map(rows.map((row) => [planId(row), fromRow(row)]));
}

export async function findStoredPlan(db: D1Database, tenant: string, key: string, version: number | null): Promise<StoredPlan | null> {
	const row = await findPlan(db, tenant, key, version);
	return row ? fromRow(row) : null;
}

/** POST /v1/plans: 201 with the new version; 400 naming every bad field. */
export async function createPlanRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const body = await readJson(request, MAX_PLAN_BYTES);
	const meters = await onAggregator(env, tenant, (aggregator) => aggregator.listMeters(tenant) as Promise<StoredMeter[]>);
	const bySlug = new Map(meters.map((meter) => [meter.slug, meter]));
	const { plan, issues } = validatePlan(body, new Set(bySlug.keys()));
	if (!plan) throw new ApiError(400, `Invalid plan: ${issues.map((i) => `${i.path} ${i.message}`).join("; ")}`, { details: issues });
	const resolved: Record<string, ResolvedMeter> = {};
	for (const card of plan.rateCards) {
		if (!("meter" in card.target)) continue;
		const meter = bySlug.get(card.target.meter)!;
		resolved[meter.slug] = { id: meter.id, aggregation: meter.aggregation };
	}
	const now = new Date().toISOString();
	const definition = JSON.stringify({ plan: planToJson(plan), meters: resolved });
	const version = await insertPlanVersion(env.DB, tenant, plan.key, definition, now);
	return json(present({ key: plan.key, version, createdAt: now, plan, meters: resolved }), 201);
}

/** GET /v1/plans: the newest version of every plan. */
export async function listPlansRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const rows = await latestPlans(env.DB, tenant);
	return json({ plans: rows.map((row) => present(fromRow(row))) });
}

/** GET /v1/plans/:key (?version=n): one version, the newest by default, with the list of versions. */
export async function getPlanRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const url = new URL(request.url);
	onlyQuery(url, ["version"]);
	const key = planKeyParam(request);
	const version = versionParam(url.searchParams.get("version"), "version");
	const stored = await findStoredPlan(env.DB, tenant, key, version);
	if (!stored) throw new ApiError(404, version === null ? `No plan ${key}` : `No version ${version} of plan ${key}`);
	const versions = await planVersions(env.DB, tenant, key);
	return json({ ...present(stored), versions: versions.map((v) => ({ version: v.version, createdAt: v.created_at })) });
}

export function planKeyParam(request: IRequest): string {
	const key = pathParam(request, "key");
	if (key.length > PLAN_LIMITS.maxKeyLength || !SLUG.test(key)) throw invalidField("key", PLAN_KEY_RULE);
	return key;
}

/** A plan version: a positive integer, or null when absent. */
export function versionParam(value: unknown, path: string): number | null {
	if (value === null || value === undefined) return null;
	const number = typeof value === "string" && /^\d{1,9}$/.test(value) ? Number(value) : value;
	if (typeof number !== "number" || !Number.isSafeInteger(number) || number < 1) throw invalidField(path, "must be a positive integer");
	return number;
}
