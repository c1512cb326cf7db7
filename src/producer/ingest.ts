// POST /v1/events: validate, answer 202 at once, enqueue inside waitUntil.
import { authenticate } from "../auth/keys";
import { readJson } from "../http/body";
import { json } from "../http/errors";
import { EVENT_LIMITS, parseEventsBody } from "../events/schema";
import { enqueueEvents } from "./pack";

export async function ingestEvents(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
	const tenant = await authenticate(request, env, ["write"]);
	const body = await readJson(request, EVENT_LIMITS.maxBodyBytes);
	const events = parseEventsBody(body, Date.now());
	// The app's answer never waits for the queue: the send runs after the response.
	ctx.waitUntil(
		enqueueEvents(env.EVENTS, tenant, events).catch((err) => console.error("enqueue failed", { tenant, events: events.length }, err)),
	);
	return json({ accepted: events.length, ids: events.map((event) => event.id) }, 202);
}
