// The three attribution fields, customerId, route and country: carried to the queue exactly as
// sent, refused by the consumer's guard when a queued event holds what the edge would not let
// through, and country filled by the producer from request.cf only for events that name none.
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { checkEventsMessage } from "../../src/event/guard";
import type { EventsMessage, QueuedEvent } from "../../src/event/model";
import { deadLetterRows, deliver, eventsMessage, queuedEvent, rawMessage, seenIds } from "../consumer/helpers";
import { createTenant, EVENTS_URL, eventsRequest, ingest, uniqueTenantId, type TestTenant } from "../helpers";
import { basicAuth, post } from "../ingest/helpers";

afterEach(() => {
	vi.restoreAllMocks();
});

const COUNTRY = 'must be an ISO 3166-1 alpha-2 code of two capital letters, such as "DE"';

/** POST /v1/events of `events`, with `cf` as Cloudflare's edge would attach it (none locally). */
function eventsWithCf(tenant: TestTenant, events: unknown[], cf?: { country?: string }): Request {
	const headers = { "content-type": "application/json", authorization: `Bearer ${tenant.writeKey}` };
	return new Request(EVENTS_URL, { method: "POST", body: JSON.stringify({ events }), headers, ...(cf && { cf }) });
}

describe("customerId, route and country at the edge", () => {
	it("carries all three to the queue exactly as sent", async () => {
		const tenant = await createTenant();
		const at = Date.now() - 1_000;
		const events = [
			{ id: "a-1", event: "$request", timestamp: at, customerId: "c".repeat(256), route: "/v1/items/:id", country: "T1" },
			{ id: "a-2", event: "api_call", timestamp: at, customerId: "c", route: "/".repeat(200), country: "XX" },
			{ id: "a-3", event: "api_call", timestamp: at, customerId: "acme", country: "DE" },
		];
		const { response, queue } = await ingest(eventsRequest(JSON.stringify({ events }), tenant.writeKey));
		expect(response.status).toBe(202);
		expect(queue.messages.flatMap((message) => message.events)).toEqual<QueuedEvent[]>(events);
	});

	it("reports a bad customerId, route and country of one event together", async () => {
		const tenant = await createTenant();
		const { response, queue } = await ingest(
			eventsRequest(
				JSON.stringify({ events: [{ event: "ok" }, { event: "a", customerId: "", route: 7, country: "de" }] }),
				tenant.writeKey,
			),
		);
		expect(response.status).toBe(400);
		expect(await response.json()).toEqual({
			error: {
				code: "invalid_request",
				message: "1 invalid event; nothing was accepted",
				details: [
					{ index: 1, path: "customerId", message: "must be 1-256 characters" },
					{ index: 1, path: "route", message: "must be a string" },
					{ index: 1, path: "country", message: COUNTRY },
				],
			},
		});
		expect(queue.calls).toEqual([]);
	});
});

describe("the consumer's guard", () => {
	const message = (fields: Record<string, unknown>) => ({
		v: 1,
		tenant: "t",
		events: [queuedEvent({ id: "ok" }), { ...queuedEvent(), ...fields }],
	});

	it.each<[string, Record<string, unknown>, string]>([
		["an empty customerId", { customerId: "" }, "events[1].customerId: must be 1-256 characters"],
		["a 257-character customerId", { customerId: "c".repeat(257) }, "events[1].customerId: must be 1-256 characters"],
		["a numeric customerId", { customerId: 42 }, "events[1].customerId: must be a string"],
		["an empty route", { route: "" }, "events[1].route: must be 1-200 characters"],
		["a 201-character route", { route: "/".repeat(201) }, "events[1].route: must be 1-200 characters"],
		["a null route", { route: null }, "events[1].route: must be a string"],
		["a lower-case country", { country: "de" }, `events[1].country: ${COUNTRY}`],
		["a three-letter country", { country: "DEU" }, `events[1].country: ${COUNTRY}`],
		["a numeric country", { country: 49 }, `events[1].country: ${COUNTRY}`],
	])("refuses a queued event with %s", (_, fields, reason) => {
		expect(checkEventsMessage(message(fields))).toBe(reason);
	});

	it("lets every boundary value the edge accepts through", () => {
		for (const fields of [
			{ customerId: "c", route: "/", country: "DE" },
			{ customerId: "c".repeat(256), route: "/".repeat(200), country: "XX" },
			{ country: "T1" },
		])
			expect(checkEventsMessage(message(fields))).toBeNull();
	});

	it("dead-letters and acks a message with a bad customerId or country, and aggregates a valid one carrying all three", async () => {
		const tenant = uniqueTenantId();
		const badCustomer = rawMessage(
			`${tenant}/customer`,
			{ v: 1, tenant, events: [{ ...queuedEvent({ id: "b-1" }), customerId: 42 }] },
			1,
		);
		const badCountry = rawMessage(
			`${tenant}/country`,
			{ v: 1, tenant, events: [{ ...queuedEvent({ id: "b-2" }), country: "Germany" }] },
			1,
		);
		const valid = eventsMessage(`${tenant}/valid`, tenant, [
			queuedEvent({ id: "g-1", customerId: "acme", route: "/v1/items/:id", country: "DE" }),
		]);

		const result = await deliver([badCustomer, valid, badCountry]);

		expect(result.explicitAcks).toEqual([badCustomer.id, badCountry.id, valid.id]);
		expect(result.retryMessages).toEqual([]);
		expect(await seenIds(tenant)).toEqual(["g-1"]);
		const rows = await vi.waitFor(
			async () => {
				const stored = await deadLetterRows(`${tenant}/`);
				expect(stored).toHaveLength(2);
				return stored;
			},
			{ timeout: 10_000, interval: 50 },
		);
		expect(rows.map(({ id, error }) => ({ id, error }))).toEqual([
			{ id: badCountry.id, error: `undecodable message: events[0].country: ${COUNTRY}` },
			{ id: badCustomer.id, error: "undecodable message: events[0].customerId: must be a string" },
		]);
	});
});

describe("the country from request.cf", () => {
	/** The events the Worker's own fetch handler enqueued on the real queue for the request. */
	async function enqueuedThroughWorker(request: Request): Promise<QueuedEvent[]> {
		// A spy that calls through: the real local queue still gets every send.
		const sendBatch = vi.spyOn(env.EVENTS, "sendBatch");
		const response = await exports.default.fetch(request);
		expect(response.status).toBeLessThan(300);
		// The compatible APIs send inside waitUntil, which may outlast the response.
		await vi.waitFor(() => expect(sendBatch).toHaveBeenCalledTimes(1), { timeout: 10_000, interval: 20 });
		const events = sendBatch.mock.calls.flatMap(([messages]) =>
			[...messages].flatMap((message) => (JSON.parse(message.body as string) as EventsMessage).events),
		);
		sendBatch.mockRestore();
		return events;
	}

	it("gives events that name no country the request's, through the Worker's exported fetch, and keeps an event's own", async () => {
		const tenant = await createTenant();
		const at = Date.now() - 1_000;
		const events = await enqueuedThroughWorker(
			eventsWithCf(
				tenant,
				[
					{ id: "c-1", event: "a", timestamp: at },
					{ id: "c-2", event: "a", timestamp: at, country: "FR" },
				],
				{ country: "DE" },
			),
		);
		expect(events).toEqual<QueuedEvent[]>([
			{ id: "c-1", event: "a", timestamp: at, country: "DE" },
			{ id: "c-2", event: "a", timestamp: at, country: "FR" },
		]);
	});

	it("invents no country when the request has no cf, or a cf without a country", async () => {
		const tenant = await createTenant();
		const at = Date.now() - 1_000;
		for (const cf of [undefined, {}]) {
			const { response, queue } = await ingest(eventsWithCf(tenant, [{ id: "n-1", event: "a", timestamp: at }], cf));
			expect(response.status).toBe(202);
			expect(queue.messages.flatMap((message) => message.events)).toEqual<QueuedEvent[]>([{ id: "n-1", event: "a", timestamp: at }]);
		}
	});

	it("fills the country of Segment and PostHog events the same way", async () => {
		const tenant = await createTenant();
		const segment = post(
			"/v1/batch",
			{ batch: [{ type: "track", messageId: "s-1", event: "a" }] },
			{ authorization: basicAuth(tenant.writeKey) },
		);
		const posthog = post("/batch/", { api_key: tenant.writeKey, batch: [{ event: "a", distinct_id: "u", uuid: "p-1" }] });
		const withCf = (request: Request) => new Request(request, { cf: { country: "JP" } });
		const sent = [...(await enqueuedThroughWorker(withCf(segment))), ...(await enqueuedThroughWorker(withCf(posthog)))];
		expect(sent.map(({ id, country }) => ({ id, country }))).toEqual([
			{ id: "s-1", country: "JP" },
			{ id: "p-1", country: "JP" },
		]);
	});
});
