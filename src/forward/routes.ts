// /v1/destinations (read key): create, list, show and delete a tenant's destinations, and list and
// replay each one's dead letters. Secrets are encrypted on the way in and never leave again.
import type { IRequest } from "itty-router";
import { authenticate } from "../http/auth.js";
import { readJson } from "../http/body.js";
import { onlyQuery, pathParam } from "../http/params.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import {
	countForwardDeadLetters,
	deleteDestination,
	deleteForwardDeadLetters,
	getDestination,
	insertDestination,
	listDestinations,
	listForwardDeadLetters,
	type DestinationRow,
} from "../sinks/d1/destinations.js";
import { isTestSpace } from "../sinks/d1/tenants.js";
import { forgetDestinations, type ForwardRetry } from "./consumer.js";
import { encryptSecret } from "./crypto.js";
import { DESTINATION_LIMITS, KIND_SPECS, secretBinding, validateDestination, type DestinationConfig, type Kind } from "./destinations.js";
import { healthOf } from "./health.js";

const ID = /^dst_[a-z0-9]{16}$/;
const PAGE_MAX = 100;

/** The tenant and the encryption key; 503 while DESTINATIONS_KEY is unset (forwarding is off). */
async function open(request: Request, env: Env): Promise<{ tenant: string; key: string }> {
	const tenant = await authenticate(request, env, ["read"]);
	if (!env.DESTINATIONS_KEY)
		throw new ApiError(503, "Forwarding is off: set the DESTINATIONS_KEY secret to manage destinations", { code: "forwarding_off" });
	return { tenant, key: env.DESTINATIONS_KEY };
}

/** A destination as the API shows it: its config, the names of its secret fields, and its health. Never a secret. */
function present(row: DestinationRow, deadLetters: number, now: number) {
	const { id, status, ...health } = healthOf(row, now);
	return {
		id,
		kind: row.kind,
		...(JSON.parse(row.config) as DestinationConfig),
		secretFields: [KIND_SPECS[row.kind as Kind].secret],
		test: row.test === 1,
		createdAt: row.created_at,
		health: { status, ...health, deadLetters },
	};
}

function idParam(request: IRequest): string {
	const id = pathParam(request, "id");
	if (!ID.test(id)) throw invalidField("id", "must be a destination id (dst_ and 16 letters or digits)");
	return id;
}

async function found(env: Env, tenant: string, id: string): Promise<DestinationRow> {
	const row = await getDestination(env.DB, tenant, id);
	if (!row) throw new ApiError(404, `No destination ${id}`);
	return row;
}

/** POST /v1/destinations: 201 with the destination (without its secret); 400 naming a bad field or the cap. */
/**
 * This isolate's forward consumer and the tenant's aggregator (which forwards only while the tenant
 * has a destination) forget what they knew; should the aggregator not hear of it, its 30 s cache
 * still expires.
 */
async function destinationsChanged(env: Env, tenant: string): Promise<void> {
	forgetDestinations(tenant);
	await env.AGGREGATOR.getByName(tenant)
		.destinationsChanged(tenant)
		.catch((err: unknown) => console.error("telling the aggregator of a destination change failed", { tenant }, err));
}

export async function createDestinationRoute(request: IRequest, env: Env): Promise<Response> {
	const { tenant, key } = await open(request, env);
	onlyQuery(new URL(request.url), []);
	const valid = validateDestination(await readJson(request, DESTINATION_LIMITS.maxBodyBytes));
	const random = crypto.getRandomValues(new Uint8Array(16));
	const id = `dst_${[...random].map((b) => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join("")}`;
	const row = {
		tenant,
		id,
		kind: valid.kind,
		config: JSON.stringify(valid.config),
		secret: await encryptSecret(key, secretBinding(tenant, id), JSON.stringify(valid.secret)),
		test: isTestSpace(tenant) ? 1 : 0,
		created_at: new Date().toISOString(),
	};
	if (!(await insertDestination(env.DB, row, DESTINATION_LIMITS.maxPerTenant)))
		throw invalidField(
			"kind",
			`is a new destination, and the tenant already has ${DESTINATION_LIMITS.maxPerTenant} (the cap); delete one first`,
		);
	await destinationsChanged(env, tenant);
	return json(present((await getDestination(env.DB, tenant, id))!, 0, Date.now()), 201);
}

/** GET /v1/destinations: every destination of the tenant with its health. */
export async function listDestinationsRoute(request: IRequest, env: Env): Promise<Response> {
	const { tenant } = await open(request, env);
	onlyQuery(new URL(request.url), []);
	const [rows, dead] = await Promise.all([listDestinations(env.DB, tenant), countForwardDeadLetters(env.DB, tenant)]);
	const now = Date.now();
	return json({ destinations: rows.map((row) => present(row, dead.get(row.id) ?? 0, now)) });
}

export async function getDestinationRoute(request: IRequest, env: Env): Promise<Response> {
	const { tenant } = await open(request, env);
	onlyQuery(new URL(request.url), []);
	const id = idParam(request);
	const [row, dead] = await Promise.all([found(env, tenant, id), countForwardDeadLetters(env.DB, tenant)]);
	return json(present(row, dead.get(id) ?? 0, Date.now()));
}

/** DELETE /v1/destinations/:id: 204; its dead letters go with it, and retries in flight find nothing to deliver to. */
export async function deleteDestinationRoute(request: IRequest, env: Env): Promise<Response> {
	const { tenant } = await open(request, env);
	onlyQuery(new URL(request.url), []);
	const id = idParam(request);
	if (!(await deleteDestination(env.DB, tenant, id))) throw new ApiError(404, `No destination ${id}`);
	await destinationsChanged(env, tenant);
	return new Response(null, { status: 204 });
}

function pageParams(url: URL): { limit: number; cursor: number } {
	onlyQuery(url, ["limit", "cursor"]);
	const limitText = url.searchParams.get("limit") ?? "50";
	const cursorText = url.searchParams.get("cursor") ?? "0";
	if (!/^\d{1,3}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > PAGE_MAX)
		throw invalidField("limit", `must be 1–${PAGE_MAX}`);
	if (!/^\d{1,15}$/.test(cursorText)) throw invalidField("cursor", "must be the nextCursor of the previous page");
	return { limit: Number(limitText), cursor: Number(cursorText) };
}

/** GET /v1/destinations/:id/dead-letters?limit=&cursor=: oldest first, with their events. */
export async function listForwardDeadLettersRoute(request: IRequest, env: Env): Promise<Response> {
	const { tenant } = await open(request, env);
	const { limit, cursor } = pageParams(new URL(request.url));
	const id = idParam(request);
	await found(env, tenant, id);
	const rows = await listForwardDeadLetters(env.DB, tenant, id, cursor, limit);
	return json({
		deadLetters: rows.map((row) => ({
			seq: row.seq,
			events: JSON.parse(row.events) as unknown[],
			error: row.error,
			attempts: row.attempts,
			firstFailedAt: row.first_failed_at,
			lastFailedAt: row.last_failed_at,
		})),
		nextCursor: rows.length === limit ? String(rows[rows.length - 1]!.seq) : null,
	});
}

/**
 * POST /v1/destinations/:id/dead-letters/replay?limit=: sends up to `limit` (default 100) dead
 * letters back to the forward queue with a fresh retry budget, then removes them. A crash between
 * the two resends a batch the provider deduplicates by event id.
 */
export async function replayForwardDeadLettersRoute(request: IRequest, env: Env): Promise<Response> {
	const { tenant } = await open(request, env);
	const url = new URL(request.url);
	onlyQuery(url, ["limit"]);
	const limitText = url.searchParams.get("limit") ?? String(PAGE_MAX);
	if (!/^\d{1,3}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > PAGE_MAX)
		throw invalidField("limit", `must be 1–${PAGE_MAX}`);
	const id = idParam(request);
	await found(env, tenant, id);
	const rows = await listForwardDeadLetters(env.DB, tenant, id, 0, Number(limitText));
	if (rows.length > 0) {
		const now = Date.now();
		// attempt 1 again: a replay gets the whole budget, and the destination's health shows how it goes.
		await env.FORWARD.sendBatch(
			rows.map((row) => ({
				body: {
					v: 1,
					tenant,
					destination: id,
					events: JSON.parse(row.events),
					attempt: 1,
					firstFailedAt: now,
				} satisfies ForwardRetry,
				contentType: "json" as const,
			})),
		);
		await deleteForwardDeadLetters(
			env.DB,
			rows.map((row) => row.seq),
		);
	}
	return json({ replayed: rows.length, events: rows.reduce((n, row) => n + (JSON.parse(row.events) as unknown[]).length, 0) });
}
