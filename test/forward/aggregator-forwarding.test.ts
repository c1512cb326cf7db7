// The aggregator hands an archived range to the forwarding queue only while its tenant has a
// destination: without one the forward consumer would read every event to deliver it nowhere.
// Creating or deleting a destination tells the aggregator at once, so the next range follows it.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import type { EventsMessage } from "../../src/event/model";
import { archiveOn, freezeClock, internals } from "../aggregator/helpers";
import { deliver, eventsMessage, queuedEvent } from "../consumer/helpers";
import { advanceClock, call, createTenant, useFrozenClock } from "../helpers";
import { createDestination } from "./helpers";

useFrozenClock(() => freezeClock(Date.UTC(2100, 2, 10, 15)));

/** Puts a recorder in the aggregator's FORWARD binding; it decodes each message's text as the consumer does. */
async function recordForwarding(tenant: string): Promise<EventsMessage[]> {
	const sent: EventsMessage[] = [];
	const recorder = {
		async sendBatch(messages: Iterable<MessageSendRequest>) {
			for (const message of messages) sent.push(JSON.parse(message.body as string) as EventsMessage);
		},
	};
	await runInDurableObject(env.AGGREGATOR.getByName(tenant), (instance: TenantAggregator) => {
		const inner = internals(instance);
		inner.env = { ...inner.env, FORWARD: recorder as unknown as Queue };
	});
	return sent;
}

/** Delivers one message of events with these ids through the real consumer, then runs the archive alarm a minute later. */
async function archiveEvents(tenant: string, message: string, ids: string[]): Promise<void> {
	const events = ids.map((id) => queuedEvent({ id, timestamp: Date.now() - 1000 }));
	await deliver([eventsMessage(`${tenant}/${message}`, tenant, events)]);
	advanceClock(60_000);
	await runDurableObjectAlarm(env.AGGREGATOR.getByName(tenant));
}

const idsOf = (sent: EventsMessage[]) => sent.map((message) => message.events.map((event) => event.id));

describe("forwarding from the aggregator", () => {
	it("sends a range only while the tenant has a destination, from the first range after one is created until it is deleted", async () => {
		const tenant = await createTenant();
		await archiveOn(tenant.id);
		const sent = await recordForwarding(tenant.id);

		await archiveEvents(tenant.id, "before", ["a1", "a2"]);
		expect(idsOf(sent)).toEqual([]);
		const archived = await env.ARCHIVE.list({ prefix: `tenant=${tenant.id}/` });
		expect(archived.objects).toHaveLength(1);

		const hook = await createDestination(tenant.readKey, {
			kind: "webhook",
			url: "https://hooks.test/in",
			signingSecret: "0123456789abcdef",
		});
		await archiveEvents(tenant.id, "during", ["b1", "b2", "b3"]);
		expect(idsOf(sent)).toEqual([["b1", "b2", "b3"]]);
		expect(sent[0]!.tenant).toBe(tenant.id);

		expect((await call(`/v1/destinations/${hook.id}`, { method: "DELETE", key: tenant.readKey })).status).toBe(204);
		await archiveEvents(tenant.id, "after", ["c1"]);
		expect(idsOf(sent)).toEqual([["b1", "b2", "b3"]]);
		expect((await env.ARCHIVE.list({ prefix: `tenant=${tenant.id}/` })).objects).toHaveLength(3);
	});
});
