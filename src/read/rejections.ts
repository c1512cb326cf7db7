// GET /v1/rejections: the Segment and PostHog events the caller's SDKs sent that were rejected, and why.
import { authenticate } from "../http/auth.js";
import { listRejections, type RejectionRow } from "../sinks/d1/rejections.js";
import { invalidField, json } from "../shared/errors.js";
import { onlyQuery } from "../http/params.js";

const MAX_PAGE = 100;

function present(row: RejectionRow) {
	let body: unknown;
	try {
		body = JSON.parse(row.body);
	} catch {
		// A body cut at 8 KB is no longer JSON: it is shown as its text, ending in the marker.
		body = row.body;
	}
	return {
		id: String(row.seq),
		receivedAt: row.received_at,
		source: row.source,
		eventId: row.event_id,
		place: row.place,
		issues: JSON.parse(row.issues) as unknown,
		body,
	};
}

/** One page, newest first; `nextCursor` continues it and is null on the last page. */
export async function getRejections(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const url = new URL(request.url);
	onlyQuery(url, ["limit", "cursor"]);
	const limitText = url.searchParams.get("limit") ?? "50";
	const limit = Number(limitText);
	if (!/^\d{1,3}$/.test(limitText) || limit < 1 || limit > MAX_PAGE) throw invalidField("limit", `must be an integer 1-${MAX_PAGE}`);
	const cursor = url.searchParams.get("cursor");
	if (cursor !== null && !/^[1-9]\d{0,14}$/.test(cursor)) throw invalidField("cursor", "must be a cursor from a previous page");
	// One row more than the page tells whether another page follows.
	const rows = await listRejections(env.DB, tenant, cursor === null ? Number.MAX_SAFE_INTEGER : Number(cursor), limit + 1, Date.now());
	const page = rows.slice(0, limit);
	return json({ items: page.map(present), nextCursor: rows.length > limit ? String(page[page.length - 1]!.seq) : null });
}
