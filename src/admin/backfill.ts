// POST /v1/admin/backfill {tenant, meter, from, to, cursor?}: replays a tenant's raw-event archive
// for event dates from..to through a meter created since, so the meter covers history. Each part
// counts once per meter (the aggregator remembers it), so a repeated or resumed call adds nothing.
import type { IRequest } from "itty-router";
import type { BackfillResult } from "../aggregator/backfill.js";
import { requireAdmin } from "../http/auth.js";
import { readJson } from "../http/body.js";
import { onlyQuery } from "../http/params.js";
import type { StoredMeter } from "../meters/model.js";
import { archiveOf, dateParam } from "../read/export.js";
import { eventsOfParquet, listParts } from "../sinks/archive.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";

/** Parts one call replays (each costs an R2 read and an aggregator call); `nextCursor` continues. */
const PARTS_PER_CALL = 100;
const FIELDS = new Set(["tenant", "meter", "from", "to", "cursor"]);

export async function backfillRoute(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	onlyQuery(new URL(request.url), []);
	const body = await readJson(request, 4096);
	if (!isPlainObject(body)) throw invalidField("body", "must be a JSON object");
	for (const key of Object.keys(body)) if (!FIELDS.has(key)) throw invalidField(key, "unknown field");
	const { tenant, meter: slug, cursor } = body;
	if (typeof tenant !== "string" || tenant.length === 0) throw invalidField("tenant", "must be a tenant id");
	if (typeof slug !== "string" || slug.length === 0) throw invalidField("meter", "must be a meter slug");
	if (cursor !== undefined && (typeof cursor !== "string" || !cursor.startsWith(`tenant=${tenant}/date=`)))
		throw invalidField("cursor", "must be a nextCursor from a previous answer");
	const from = dateParam(typeof body.from === "string" ? body.from : null, "from", "");
	const to = dateParam(typeof body.to === "string" ? body.to : null, "to", "");
	if (to < from) throw invalidField("to", "must not be before from");
	const bucket = archiveOf(env);
	if (!(await env.DB.prepare("SELECT 1 FROM tenants WHERE id = ?1").bind(tenant).first())) throw new ApiError(404, `No tenant ${tenant}`);
	const aggregator = env.AGGREGATOR.getByName(tenant);
	const meter = (await aggregator.getMeter(tenant, slug)) as StoredMeter | null;
	if (!meter || meter.deletedAt !== null) throw invalidField("meter", `no active meter ${slug}`);

	const { parts, next } = await listParts(bucket, tenant, from, to, (cursor as string | undefined) ?? null, PARTS_PER_CALL);
	const totals = { parts: parts.length, counted: 0, skipped: 0, alreadyDone: 0 };
	for (const part of parts) {
		const object = await bucket.get(part.key);
		if (!object) continue;
		const events = await eventsOfParquet(await object.arrayBuffer());
		const result = (await aggregator.backfillMeter(tenant, meter.id, part.key, events)) as BackfillResult;
		if (result === "no-meter") throw new ApiError(409, `Meter ${slug} was deleted during the backfill`);
		if (result === "done") totals.alreadyDone++;
		else {
			totals.counted += result.counted;
			totals.skipped += result.skipped;
		}
	}
	return json({ tenant, meter: slug, from, to, ...totals, nextCursor: next });
}
