// The tenant's meters: POST/GET/DELETE /v1/meters, managed with a read key (write keys ship inside
// clients and must not change what is billed). The definitions live in the tenant's aggregator.
import type { IRequest } from "itty-router";
import { meterCap } from "../aggregator/parts.js";
import { authenticate } from "../http/auth.js";
import { readJson } from "../http/body.js";
import { onlyQuery, pathParam } from "../http/params.js";
import { METER_LIMITS, SLUG, SLUG_RULE, validateMeter, type StoredMeter } from "../meters/model.js";
import { ApiError, invalidField, json } from "../shared/errors.js";

type Aggregator = ReturnType<Env["AGGREGATOR"]["getByName"]>;

/** A meter as the API shows it: its definition and times; the internal id stays inside. */
export function presentMeter(stored: StoredMeter): Omit<StoredMeter, "id"> {
	const { id: _, ...meter } = stored;
	return meter;
}

/** An aggregator call; its failure is the caller's cue to retry (503), never an internal error. */
export async function onAggregator<T>(env: Env, tenant: string, call: (aggregator: Aggregator) => Promise<T>): Promise<T> {
	try {
		return await call(env.AGGREGATOR.getByName(tenant));
	} catch (err) {
		console.error("meter call failed", { tenant }, err);
		throw new ApiError(503, "Meters are unavailable; retry shortly", { headers: { "retry-after": "5" } });
	}
}

/** The :slug of the path; one that no meter can have is a 400 naming it. */
export function slugParam(request: IRequest): string {
	const slug = pathParam(request, "slug");
	if (slug.length > METER_LIMITS.maxSlugLength || !SLUG.test(slug)) throw invalidField("slug", SLUG_RULE);
	return slug;
}

function noMeter(slug: string): ApiError {
	return new ApiError(404, `No active meter ${slug}`);
}

/** POST /v1/meters: 201 with the meter; 400 naming each bad field (or the cap, as "slug"); 409 for an active slug. */
export async function createMeterRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const { meter, issues } = validateMeter(await readJson(request, METER_LIMITS.maxBodyBytes));
	if (!meter) throw new ApiError(400, `Invalid meter: ${issues.map((i) => `${i.path} ${i.message}`).join("; ")}`, { details: issues });
	const created = await onAggregator(
		env,
		tenant,
		(aggregator) => aggregator.createMeter(tenant, meter) as Promise<StoredMeter | "exists" | "capped">,
	);
	if (created === "exists")
		throw new ApiError(409, `An active meter already has the slug ${meter.slug}; delete it first to reuse the slug`, {
			details: [{ path: "slug", message: "is taken by an active meter" }],
		});
	if (created === "capped") {
		throw invalidField("slug", `is a new meter, and the tenant already has ${meterCap(env)} active meters (the cap); delete one first`);
	}
	return json(presentMeter(created), 201);
}

/** GET /v1/meters: the active meters, by slug. */
export async function listMetersRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const meters = await onAggregator(env, tenant, (aggregator) => aggregator.listMeters(tenant) as Promise<StoredMeter[]>);
	return json({ meters: meters.map(presentMeter) });
}

/** GET /v1/meters/:slug: the active meter, or 404 (a deleted one is gone from the API; its history stays queryable). */
export async function getMeterRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const slug = slugParam(request);
	const meter = await onAggregator(env, tenant, (aggregator) => aggregator.getMeter(tenant, slug) as Promise<StoredMeter | null>);
	if (!meter || meter.deletedAt !== null) throw noMeter(slug);
	return json(presentMeter(meter));
}

/** DELETE /v1/meters/:slug: 200 with the meter as deleted (deletedAt set), or 404 when no active meter has the slug. */
export async function deleteMeterRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const slug = slugParam(request);
	const deleted = await onAggregator(env, tenant, (aggregator) => aggregator.deleteMeter(tenant, slug) as Promise<StoredMeter | null>);
	if (!deleted) throw noMeter(slug);
	return json(presentMeter(deleted));
}
