// GET /v1/export: the tenant's raw-event archive, as the Parquet parts in R2 for a date range, each
// streamed through the Worker by GET /v1/export/:date/:part with the read key (no signed URLs).
import type { IRequest } from "itty-router";
import { authenticate } from "../http/auth.js";
import { onlyQuery, pathParam } from "../http/params.js";
import { datePrefix, listParts, PARQUET_TYPE } from "../sinks/archive.js";
import { ApiError, invalidField, json } from "../shared/errors.js";

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const PART = /^[A-Za-z0-9_-]{1,100}\.parquet$/;
/** Parts per answer; a longer list continues from `nextCursor`. */
const MAX_FILES = 1000;
const DAY_MS = 86_400_000;

export function archiveOf(env: Env): R2Bucket {
	if (!env.ARCHIVE) throw new ApiError(404, "This deployment keeps no archive (no ARCHIVE bucket is bound)");
	return env.ARCHIVE;
}

export function dateParam(value: string | null, name: string, fallback: string): string {
	const date = value ?? fallback;
	if (
		!DATE.test(date) ||
		Number.isNaN(Date.parse(`${date}T00:00:00Z`)) ||
		new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date
	)
		throw invalidField(name, "must be a date, YYYY-MM-DD (UTC)");
	return date;
}

/** GET /v1/export?from=&to=&cursor=: the parts of event dates from..to (inclusive UTC dates; default the last 7 days). */
export async function listExportRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const url = new URL(request.url);
	onlyQuery(url, ["from", "to", "cursor"]);
	const today = new Date().toISOString().slice(0, 10);
	const from = dateParam(url.searchParams.get("from"), "from", new Date(Date.now() - 6 * DAY_MS).toISOString().slice(0, 10));
	const to = dateParam(url.searchParams.get("to"), "to", today);
	if (to < from) throw invalidField("to", "must not be before from");
	const cursor = url.searchParams.get("cursor");
	if (cursor !== null && !cursor.startsWith(`tenant=${tenant}/date=`))
		throw invalidField("cursor", "must be a nextCursor from a previous answer");
	const { parts, next } = await listParts(archiveOf(env), tenant, from, to, cursor, MAX_FILES);
	const files = parts.map(({ date, part, bytes, uploaded }) => ({ date, part, bytes, uploaded, url: `/v1/export/${date}/${part}` }));
	const nextCursor = next;
	return json({ tenant, from, to, files, nextCursor });
}

/** GET /v1/export/:date/:part: one part, streamed. */
export async function getExportPartRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const date = dateParam(pathParam(request, "date"), "date", "");
	const part = pathParam(request, "part");
	if (!PART.test(part)) throw invalidField("part", "is not an archive part name");
	const object = await archiveOf(env).get(`${datePrefix(tenant, date)}${part}`);
	if (!object) throw new ApiError(404, `No archive part ${date}/${part}`);
	return new Response(object.body, {
		headers: {
			"content-type": PARQUET_TYPE,
			"content-length": String(object.size),
			"content-disposition": `attachment; filename="${tenant}-${date}-${part}"`,
		},
	});
}
