// Each provider's payload, end to end: the pipeline running locally in workerd forwards accepted
// events to a local HTTP server posing as PostHog, Segment, Mixpanel, Amplitude and a webhook, which
// checks every request's exact body and headers and verifies the webhook's signature; then an outage
// of every destination followed by its recovery delivers each event exactly once per destination.
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { startLocalPipeline, type LocalPipeline, type TenantKeys } from "../../src/scripts/local-pipeline";

type Kind = "posthog" | "segment" | "mixpanel" | "amplitude" | "webhook";
const KINDS: Kind[] = ["posthog", "segment", "mixpanel", "amplitude", "webhook"];
/** Each kind's request target, in KINDS' order: PostHog's /batch/ and Amplitude's /batch differ by the slash. */
const PATHS = ["/batch/", "/v1/batch", "/import?strict=1", "/batch", "/hook"];
const TARGETS = new Map(PATHS.map((path, i) => [path, KINDS[i]!]));
const SECRETS = { posthog: "phc_test_key", segment: "seg_write_key", mixpanel: "mp_project_token", amplitude: "amp_api_key" };
const SIGNING_SECRET = "whsec_0123456789abcdef";
const SIGNATURE_HEADER = "X-Test-Signature";

/** A request the server answered, `at` its arrival (epoch ms). */
type Received = { kind: Kind; status: number; headers: IncomingHttpHeaders; body: string; at: number };

const received: Received[] = [];
const unexpected: string[] = [];
/** Kinds answered 503 (Retry-After: 1) for now. */
const failing = new Set<Kind>();
let server: Server;
let origin: string;
let pipeline: LocalPipeline;
let tenant: TenantKeys;
const destinationIds = {} as Record<Kind, string>;

beforeAll(async () => {
	server = createServer((request, response) => {
		const chunks: Buffer[] = [];
		request.on("data", (chunk: Buffer) => chunks.push(chunk));
		request.on("end", () => {
			const kind = TARGETS.get(request.url ?? "");
			if (request.method !== "POST" || !kind) {
				unexpected.push(`${request.method} ${request.url}`);
				response.writeHead(404).end();
				return;
			}
			const status = failing.has(kind) ? 503 : 200;
			received.push({ kind, status, headers: request.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() });
			if (status === 503) response.writeHead(503, { "retry-after": "1", "content-type": "text/plain" }).end("down");
			else response.writeHead(200, { "content-type": "application/json" }).end('{"status":1}');
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	const vars = { DESTINATIONS_KEY: "test-destinations-key", ARCHIVE_INTERVAL_MS: "500", FLUSH_INTERVAL_MS: "500" };
	pipeline = await startLocalPipeline({ vars: { ...vars, FORWARD_RETRY_BASE_MS: "500" } });
	tenant = await pipeline.createTenant("forward-providers");
	const bodies: Record<Kind, object> = {
		posthog: { kind: "posthog", host: origin, apiKey: SECRETS.posthog },
		segment: { kind: "segment", host: `${origin}/`, writeKey: SECRETS.segment },
		mixpanel: { kind: "mixpanel", host: origin, token: SECRETS.mixpanel },
		amplitude: { kind: "amplitude", host: origin, apiKey: SECRETS.amplitude },
		webhook: { kind: "webhook", url: `${origin}/hook`, signatureHeader: SIGNATURE_HEADER, signingSecret: SIGNING_SECRET },
	};
	for (const kind of KINDS) {
		const body = JSON.stringify(bodies[kind]);
		const response = await pipeline.call("/v1/destinations", { method: "POST", key: tenant.readKey, body });
		const created = (await response.json()) as { id: string; host?: string; secretFields: string[] };
		expect(response.status, JSON.stringify(created)).toBe(201);
		expect(JSON.stringify(created)).not.toContain(kind === "webhook" ? SIGNING_SECRET : SECRETS[kind]);
		if (kind !== "webhook") expect(created.host).toBe(origin);
		destinationIds[kind] = created.id;
	}
});

afterAll(async () => {
	await pipeline?.stop();
	server?.closeAllConnections();
	await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
});

/** The event as the pipeline holds it (the webhook sends exactly this), in the validator's key order. */
const sent = new Map<string, QueuedEvent>();

// The rest of the first event, in the validator's key order (the webhook body is compared as a string).
const WHO = { userId: "user-1", sessionId: "sess-1", customerId: "cus-1", route: "/v1/items/:id", country: "DE" };
const DETAILS = { properties: { plan: "pro", nested: { a: [1, "two", null] } }, performance: { duration: 42.5, statusCode: 200 } };
const USAGE = { sku: "tokens", unit: "token", micros: 1_250_500_000 };

/** Four events covering each identity (user, session only, customer only) and every forwarded field. */
function makeEvents(prefix: string): QueuedEvent[] {
	const t = Date.now() - 60_000;
	return [
		{ id: `${prefix}-1`, event: "api_call", timestamp: t, ...WHO, ...DETAILS, usage: USAGE },
		{ id: `${prefix}-2`, event: "page_view", timestamp: t + 1, userId: "user-2", country: "FR", properties: { path: "/pricing" } },
		{ id: `${prefix}-3`, event: "page_view", timestamp: t + 2, sessionId: "sess-3", country: "US", properties: { path: "/" } },
		{ id: `${prefix}-4`, event: "Signed Up", timestamp: t + 3, customerId: "cus-4", country: "XX" },
	];
}

/** POST /v1/events with the write key, in the ingest format (usage as a quantity). */
async function send(events: QueuedEvent[]): Promise<void> {
	for (const e of events) sent.set(e.id, e);
	const raw = events.map(({ usage: u, ...rest }) =>
		u ? { ...rest, usage: { sku: u.sku, unit: u.unit, quantity: u.micros / 1e6 } } : rest,
	);
	const response = await pipeline.call("/v1/events", { method: "POST", key: tenant.writeKey, body: JSON.stringify({ events: raw }) });
	expect(response.status, await response.clone().text()).toBe(202);
}

// The expected requests, written from the README's table rather than from src/forward/providers.ts.
function distinctId(e: QueuedEvent): string {
	return e.userId || e.sessionId || e.customerId || e.id;
}

function forwarded(e: QueuedEvent): Record<string, unknown> {
	return {
		...e.properties,
		...(e.customerId !== undefined ? { meterline_customer_id: e.customerId } : {}),
		...(e.route !== undefined ? { meterline_route: e.route } : {}),
		...(e.country !== undefined ? { meterline_country: e.country } : {}),
		...(e.performance?.duration !== undefined ? { meterline_duration_ms: e.performance.duration } : {}),
		...(e.performance?.statusCode !== undefined ? { meterline_status_code: e.performance.statusCode } : {}),
		...(e.usage
			? { meterline_usage_sku: e.usage.sku, meterline_usage_unit: e.usage.unit, meterline_usage_quantity: e.usage.micros / 1e6 }
			: {}),
	};
}

type Json = { [key: string]: Json } & Json[];
/** Where each provider's request holds the events, and each event's idempotency key. */
const IDS: Record<Kind, [(body: Json) => Json[], (e: Json) => unknown]> = {
	posthog: [(b) => b.batch, (e) => e.uuid],
	segment: [(b) => b.batch, (e) => e.messageId],
	mixpanel: [(b) => b, (e) => e.properties.$insert_id],
	amplitude: [(b) => b.events, (e) => e.insert_id],
	webhook: [(b) => b.events, (e) => e.id],
};

/** The event ids a request carries, in its order (or those of events). */
function idsOf(r: Received | QueuedEvent[]): string[] {
	if (Array.isArray(r)) return r.map((e) => e.id);
	const [list, key] = IDS[r.kind];
	return list(JSON.parse(r.body) as Json).map((e) => String(key(e)));
}

/** The exact body `r` must have for the events it names (Segment's sentAt is the delivery time, checked for range). */
function expectedBody(r: Received): string {
	const events = idsOf(r).map((id) => sent.get(id) ?? expect.fail(`${r.kind} was sent an unknown event ${id}`));
	const iso = (ms: number) => new Date(ms).toISOString();
	switch (r.kind) {
		case "posthog":
			return JSON.stringify({
				api_key: SECRETS.posthog,
				batch: events.map((e) => ({
					event: e.event,
					uuid: e.id,
					distinct_id: distinctId(e),
					timestamp: iso(e.timestamp),
					properties: { ...forwarded(e), ...(e.sessionId !== undefined ? { $session_id: e.sessionId } : {}) },
				})),
			});
		case "segment": {
			const sentAt = (JSON.parse(r.body) as { sentAt: string }).sentAt;
			expect(r.at - Date.parse(sentAt)).toSatisfy((ms: number) => ms >= 0 && ms < 15_000);
			expect(iso(Date.parse(sentAt))).toBe(sentAt);
			return JSON.stringify({
				batch: events.map((e) => ({
					type: "track",
					event: e.event,
					messageId: e.id,
					...(e.userId ? { userId: e.userId } : { anonymousId: distinctId(e) }),
					timestamp: iso(e.timestamp),
					properties: forwarded(e),
				})),
				sentAt,
			});
		}
		case "mixpanel":
			return JSON.stringify(
				events.map((e) => ({
					event: e.event,
					properties: { ...forwarded(e), time: e.timestamp, distinct_id: distinctId(e), $insert_id: e.id },
				})),
			);
		case "amplitude":
			return JSON.stringify({
				api_key: SECRETS.amplitude,
				events: events.map((e) => ({
					event_type: e.event,
					insert_id: e.id,
					...(e.userId ? { user_id: e.userId } : {}),
					device_id: e.sessionId || e.customerId || e.userId || e.id,
					time: e.timestamp,
					event_properties: forwarded(e),
				})),
			});
		case "webhook":
			return JSON.stringify({ v: 1, destination: destinationIds.webhook, events });
	}
}

/** The exact body, the headers each provider needs, and the webhook's HMAC verified here with node:crypto. */
function checkRequest(r: Received): void {
	expect(r.body, `${r.kind} body`).toBe(expectedBody(r));
	expect(r.headers["content-type"]).toBe("application/json");
	expect(Number(r.headers["content-length"] ?? Buffer.byteLength(r.body))).toBe(Buffer.byteLength(r.body));
	const basic = (user: string) => `Basic ${Buffer.from(`${user}:`).toString("base64")}`;
	if (r.kind === "segment") expect(r.headers.authorization).toBe(basic(SECRETS.segment));
	else if (r.kind === "mixpanel") expect(r.headers.authorization).toBe(basic(SECRETS.mixpanel));
	else expect(r.headers.authorization).toBeUndefined();
	if (r.kind !== "webhook") return expect(r.headers[SIGNATURE_HEADER.toLowerCase()]).toBeUndefined();
	const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(r.headers[SIGNATURE_HEADER.toLowerCase()]));
	expect(match, "webhook signature header").not.toBeNull();
	const t = Number(match![1]);
	expect(Math.abs(t - r.at / 1000)).toBeLessThan(15);
	expect(match![2]).toBe(createHmac("sha256", SIGNING_SECRET).update(`${t}.${r.body}`).digest("hex"));
}

/** Per kind, how often each event id arrived in requests answered 200. */
function acceptedCounts(kind: Kind): Map<string, number> {
	const counts = new Map<string, number>();
	for (const r of received) if (r.kind === kind && r.status === 200) for (const id of idsOf(r)) counts.set(id, (counts.get(id) ?? 0) + 1);
	return counts;
}

const refused = (kind: Kind, id: string) => received.filter((r) => r.kind === kind && r.status === 503 && idsOf(r).includes(id)).length;
const POLL = { timeout: 30_000, interval: 200 };

async function waitForAccepted(ids: string[]): Promise<void> {
	await vi.waitFor(() => {
		for (const kind of KINDS) expect([...acceptedCounts(kind).keys()], kind).toEqual(expect.arrayContaining(ids));
	}, POLL);
}

type Listed = { id: string; kind: Kind; health: { status: string; lastError: string | null } };

async function listed(): Promise<Listed[]> {
	const response = await pipeline.call("/v1/destinations", { key: tenant.readKey });
	expect(response.status).toBe(200);
	return ((await response.json()) as { destinations: Listed[] }).destinations;
}

const first = makeEvents("evt-a");

it("sends each provider its exact request, and a webhook signed with the destination's secret", async () => {
	await send(first);
	await waitForAccepted(idsOf(first));
	for (const kind of KINDS) expect(received.some((r) => r.kind === kind)).toBe(true);
	for (const r of received) checkRequest(r);
	expect(received.every((r) => r.status === 200)).toBe(true);
	expect(unexpected).toEqual([]);
});

it("delivers every event exactly once per destination across an outage of all of them", async () => {
	// The issue's 5-minute outage under the production backoff (10 s doubling) runs on a frozen
	// clock in test/forward/consumer.test.ts; here FORWARD_RETRY_BASE_MS = 500 and the outage
	// lasts at least 5 s, three refused attempts of one batch and two of another per destination.
	const before = received.length;
	const outageStart = Date.now();
	for (const kind of KINDS) failing.add(kind);
	const second = makeEvents("evt-b");
	const third = makeEvents("evt-c");
	await send(second);
	await vi.waitFor(() => expect(received.slice(before).filter((r) => r.status === 503).length).toBeGreaterThan(0), POLL);
	await send(third);
	await vi.waitFor(async () => {
		for (const kind of KINDS) {
			expect(refused(kind, second[0]!.id), `${kind}: attempts of the first batch`).toBeGreaterThanOrEqual(3);
			expect(refused(kind, third[0]!.id), `${kind}: attempts of the second batch`).toBeGreaterThanOrEqual(2);
		}
		expect(Date.now() - outageStart).toBeGreaterThanOrEqual(5_000);
		for (const d of await listed()) {
			expect(d.health.status, d.kind).toBe("degraded");
			expect(d.health.lastError).toMatch(/^HTTP 503/);
		}
	}, POLL);
	failing.clear();

	const all = idsOf([...first, ...second, ...third]);
	await waitForAccepted(all);
	for (const kind of KINDS) {
		const counts = acceptedCounts(kind);
		expect([...counts.keys()].sort(), kind).toEqual([...all].sort());
		const again = [...counts].filter(([, n]) => n !== 1);
		expect(again, `${kind}: ids accepted more than once`).toEqual([]);
	}
	// Retries (answered 503 or 200) carry the same exact requests, and only the outage's events:
	// what a destination took before is never sent to it again.
	const outage = new Set(idsOf([...second, ...third]));
	for (const r of received.slice(before)) {
		checkRequest(r);
		expect(idsOf(r).every((id) => outage.has(id))).toBe(true);
	}
	expect(unexpected).toEqual([]);
	const healthy = { status: "healthy", delivered: all.length, consecutiveFailures: 0, deadLetters: 0 };
	await vi.waitFor(async () => {
		for (const d of await listed()) expect(d.health, d.kind).toMatchObject(healthy);
	}, POLL);
});
