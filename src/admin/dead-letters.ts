// The dead-letter admin API: list, replay (once: a replayed row is skipped until it dies again), discard.
import type { IRequest } from "itty-router";
import superjson from "superjson";
import { requireAdmin } from "../http/auth.js";
import {
	deadLettersByIds,
	deleteDeadLetter,
	listDeadLetters,
	markReplayed,
	unreplayedDeadLetters,
	type DeadLetterRow,
} from "../sinks/d1/dead-letters.js";
import { readJson } from "../http/body.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { pathParam } from "../http/params.js";
import { checkEventsMessage } from "../event/guard.js";
import { isPlainObject } from "../shared/objects.js";

const MAX_PAGE = 100;
/** Dead letters one replay call handles; call again for more. */
const MAX_REPLAY = 100;

function present(row: DeadLetterRow) {
	return {
		id: row.id,
		tenant: row.tenant,
		error: row.error,
		attempts: row.attempts,
		firstFailedAt: row.first_failed_at,
		lastFailedAt: row.last_failed_at,
		replayedAt: row.replayed_at,
		// superjson's JSON half: typed values (BigInt, Date, Map) in JSON form. Replay uses the
		// stored text, which keeps their types.
		body: (JSON.parse(row.body) as { json: unknown }).json,
	};
}

export async function listDeadLettersRoute(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const url = new URL(request.url);
	for (const key of url.searchParams.keys())
		if (!["tenant", "limit", "cursor"].includes(key)) throw invalidField(key, "unknown query parameter");
	const limitText = url.searchParams.get("limit") ?? "50";
	const limit = Number(limitText);
	if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_PAGE) throw invalidField("limit", `must be an integer 1-${MAX_PAGE}`);
	const cursorText = url.searchParams.get("cursor") ?? "0";
	if (!/^\d{1,15}$/.test(cursorText)) throw invalidField("cursor", "must be a cursor from a previous page");
	const rows = await listDeadLetters(env.DB, url.searchParams.get("tenant"), Number(cursorText), limit);
	const nextCursor = rows.length === limit ? String(rows[rows.length - 1]!.seq) : null;
	return json({ items: rows.map(present), nextCursor });
}

export async function replayDeadLetters(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const body = await readJson(request, 64 * 1024);
	if (!isPlainObject(body)) throw invalidField("body", "must be an object");
	for (const key of Object.keys(body)) if (key !== "ids" && key !== "tenant") throw invalidField(key, "unknown field");
	let rows: DeadLetterRow[];
	const missing: string[] = [];
	if (body.ids !== undefined && body.tenant === undefined) {
		const ids = body.ids;
		if (!Array.isArray(ids) || ids.length < 1 || ids.length > MAX_REPLAY || !ids.every((id) => typeof id === "string")) {
			throw invalidField("ids", `must be 1-${MAX_REPLAY} dead-letter ids`);
		}
		rows = await deadLettersByIds(env.DB, ids as string[]);
		const found = new Set(rows.map((row) => row.id));
		missing.push(...(ids as string[]).filter((id) => !found.has(id)));
	} else if (body.tenant !== undefined && body.ids === undefined) {
		if (typeof body.tenant !== "string" || body.tenant.length === 0) throw invalidField("tenant", "must be a tenant id");
		rows = await unreplayedDeadLetters(env.DB, body.tenant, MAX_REPLAY);
	} else
		throw new ApiError(400, 'Give either "ids" or "tenant"', { details: [{ path: "ids", message: 'give either "ids" or "tenant"' }] });

	const replayed: string[] = [];
	const skipped = missing.map((id) => ({ id, reason: "not found" }));
	for (const row of rows) {
		// Replays stay idempotent however often an id is named: a row replays again only once it died again (which clears replayed_at).
		if (row.replayed_at !== null) {
			skipped.push({ id: row.id, reason: `already replayed at ${row.replayed_at}` });
			continue;
		}
		const message = superjson.parse(row.body);
		const problem = checkEventsMessage(message);
		if (problem) {
			skipped.push({ id: row.id, reason: `not replayable: ${problem}` });
			continue;
		}
		await env.EVENTS.send(message, { contentType: "json" });
		replayed.push(row.id);
	}
	await markReplayed(env.DB, replayed, new Date().toISOString());
	return json({ replayed, skipped });
}

export async function discardDeadLetter(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const id = pathParam(request, "id");
	if (!(await deleteDeadLetter(env.DB, id))) throw new ApiError(404, `No dead letter ${id}`);
	return new Response(null, { status: 204 });
}
