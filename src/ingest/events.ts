// POST /v1/events: validate, answer 202 at once, enqueue inside waitUntil (or, with
// ?ack=durable, before answering).
import { authenticate } from "../http/auth";
import { readJson } from "../http/body";
import { ApiError, invalidField, json } from "../shared/errors";
import { onlyQuery } from "../http/params";
import { EVENT_LIMITS, invalidEvents, parseEventsBody, redactionKeys, type QueuedEvent } from "../event/validate";
import { capIssues } from "./caps";
import { countProducer, reportProducerCounters } from "../sinks/counters";
import { deliverEvents } from "./deliver";

let redactList: string | undefined;
let redactSet: ReadonlySet<string> = new Set();

/** The REDACT_KEYS set, parsed once per isolate. */
export function redactionFor(env: Env): ReadonlySet<string> {
	if (env.REDACT_KEYS !== redactList) {
		redactList = env.REDACT_KEYS;
		redactSet = redactionKeys(redactList);
	}
	return redactSet;
}

/** 429 with Retry-After once a tenant passes its rate limit; the SDKs honour it. */
export async function enforceRateLimit(env: Env, tenant: string): Promise<void> {
	let allowed = true;
	try {
		allowed = (await env.TENANT_RATE_LIMIT.limit({ key: tenant })).success;
	} catch (err) {
		// Fail open: a rate limiter outage must not drop billable events.
		console.error("rate limiter unavailable", err);
	}
	if (!allowed) throw new ApiError(429, "Rate limit exceeded; retry later", undefined, { "retry-after": "60" });
}

/**
 * Hands accepted events to the queue. Fire-and-forget by default: the send, its retries and any
 * spill run after the answer. With `durable`, the answer waits for the queue, or is a 503.
 */
export async function acceptEvents(env: Env, ctx: ExecutionContext, tenant: string, events: QueuedEvent[], durable: boolean): Promise<void> {
	countProducer(tenant, "received", events.length);
	if (durable) {
		const delivery = await deliverEvents(env, tenant, events, false);
		ctx.waitUntil(reportProducerCounters(env));
		if (delivery !== "enqueued") throw new ApiError(503, "The queue is unavailable; retry the same events later (their ids make a retry safe)", undefined, { "retry-after": "5" });
		return;
	}
	ctx.waitUntil(deliverEvents(env, tenant, events, true).then(() => reportProducerCounters(env)));
}

/** All-or-nothing: a batch with an event past the tenant's name caps is refused whole, and counted. */
export async function refuseCapped(env: Env, ctx: ExecutionContext, tenant: string, events: QueuedEvent[]): Promise<void> {
	const issues = await capIssues(env, tenant, events, true);
	if (issues.length === 0) return;
	countProducer(tenant, "capped", new Set(issues.map((issue) => issue.index)).size);
	ctx.waitUntil(reportProducerCounters(env));
	throw invalidEvents(issues);
}

function ackMode(url: URL): "durable" | "fire-and-forget" {
	onlyQuery(url, ["ack"]);
	const ack = url.searchParams.get("ack");
	if (ack === null) return "fire-and-forget";
	if (ack !== "durable") throw invalidField("ack", 'must be "durable" or absent');
	return ack;
}

export async function ingestEvents(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
	const tenant = await authenticate(request, env, ["write"]);
	await enforceRateLimit(env, tenant);
	const durable = ackMode(new URL(request.url)) === "durable";
	const body = await readJson(request, EVENT_LIMITS.maxBodyBytes);
	const events = parseEventsBody(body, Date.now(), redactionFor(env));
	await refuseCapped(env, ctx, tenant, events);
	await acceptEvents(env, ctx, tenant, events, durable);
	return json({ accepted: events.length, ids: events.map((event) => event.id) }, 202);
}
