// POST /v1/events: validate, answer 202 at once, enqueue inside waitUntil (or, with
// ?ack=durable, before answering).
import { authenticate } from "../http/auth.js";
import { enforceOrigin } from "../http/cors.js";
import { readJson } from "../http/body.js";
import { ApiError, invalidField, json, type FieldIssue } from "../shared/errors.js";
import { onlyQuery } from "../http/params.js";
import { COUNTRY, EVENT_LIMITS, type QueuedEvent } from "../event/model.js";
import { parseEventsBody, redactionKeys, type Validation } from "../event/validate.js";
import { capIssues } from "./caps.js";
import { countProducer, reportProducerCounters } from "../sinks/counters.js";
import { deliverEvents } from "./deliver.js";

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
	if (!allowed) throw new ApiError(429, "Rate limit exceeded; retry later", { headers: { "retry-after": "60" } });
}

/**
 * Hands accepted events to the queue. Fire-and-forget by default: the send, its retries and any
 * spill run after the answer. With `durable`, the answer waits for the queue, or is a 503.
 */
export async function acceptEvents(
	env: Env,
	ctx: ExecutionContext,
	tenant: string,
	events: QueuedEvent[],
	durable: boolean,
): Promise<void> {
	countProducer(tenant, "received", events.length);
	if (durable) {
		const delivery = await deliverEvents(env, tenant, events, false);
		ctx.waitUntil(reportProducerCounters(env));
		if (delivery !== "enqueued")
			throw new ApiError(503, "The queue is unavailable; retry the same events later (their ids make a retry safe)", {
				headers: { "retry-after": "5" },
			});
		return;
	}
	ctx.waitUntil(deliverEvents(env, tenant, events, true).then(() => reportProducerCounters(env)));
}

/** At most this many field issues are reported, so a hostile batch cannot inflate the answer. */
const MAX_ISSUES = 100;

/** The 400 for a batch refused whole: one detail per bad field, at most MAX_ISSUES. */
export function invalidEvents(issues: FieldIssue[]): ApiError {
	const bad = new Set(issues.map((issue) => issue.index)).size;
	return new ApiError(400, `${bad} invalid event${bad === 1 ? "" : "s"}; nothing was accepted`, { details: issues.slice(0, MAX_ISSUES) });
}

/** The events of an all-or-nothing validation, or its 400: per event, or for the batch itself. */
export function acceptedOrRefused({ events, issues }: Validation): QueuedEvent[] {
	if (issues.length === 0) return events;
	if (issues.some((issue) => issue.index === undefined)) {
		throw new ApiError(400, `Invalid batch: ${issues.map((i) => `${i.path} ${i.message}`).join("; ")}`, { details: issues });
	}
	throw invalidEvents(issues);
}

/** All-or-nothing: a batch with an event past the tenant's name caps is refused whole, and counted. */
export async function refuseCapped(env: Env, ctx: ExecutionContext, tenant: string, events: QueuedEvent[]): Promise<void> {
	const issues = await capIssues(env, tenant, events, true);
	if (issues.length === 0) return;
	countProducer(tenant, "capped", new Set(issues.map((issue) => issue.index)).size);
	ctx.waitUntil(reportProducerCounters(env));
	throw invalidEvents(issues);
}

/** The caller's country as Cloudflare saw it (absent in local tests and service-binding calls). */
export function requestCountry(request: Request): string | undefined {
	const country = (request as { cf?: { country?: unknown } }).cf?.country;
	return typeof country === "string" && COUNTRY.test(country) ? country : undefined;
}

/**
 * Gives events without a country the request's. An event that names its own keeps it: a server
 * that relays its users' events knows their country better than the edge does.
 */
export function fillCountry(events: QueuedEvent[], country: string | undefined): void {
	if (country === undefined) return;
	for (const event of events) event.country ??= country;
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
	await enforceOrigin(request, env, tenant);
	await enforceRateLimit(env, tenant);
	const durable = ackMode(new URL(request.url)) === "durable";
	const body = await readJson(request, EVENT_LIMITS.maxBodyBytes);
	const events = acceptedOrRefused(parseEventsBody(body, Date.now(), redactionFor(env)));
	await refuseCapped(env, ctx, tenant, events);
	fillCountry(events, requestCountry(request));
	await acceptEvents(env, ctx, tenant, events, durable);
	return json({ accepted: events.length, ids: events.map((event) => event.id) }, 202);
}
