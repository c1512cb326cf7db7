// Reads that include the aggregator's unflushed rows: visible before the flush, and counted exactly
// once whatever state the flush is in (open, sealed and failing, committed but not yet cleared).
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { reconcile } from "../../src/read/live";
import { crashAfterD1Commit, failD1 } from "../aggregator/helpers";
import { deliver, eventsMessage, queuedEvent } from "../consumer/helpers";
import { freezeClock, previousHour, tokens } from "../faults/helpers";
import { createTenant, useFrozenClock } from "../helpers";
import { flushVia, HOUR, iso, MINUTE, usageOf } from "./helpers";

const clock = useFrozenClock(freezeClock);

describe("reconcile", () => {
	const snapshot = { incarnation: "inc", nextBatch: 7, sealed: [5, 6] };

	it("keeps every pending row when D1 holds none of the snapshot's batches", () => {
		expect(reconcile(snapshot, [])).toEqual({ stale: false, committed: new Set() });
		expect(reconcile(snapshot, ["inc:4", "other:5", "other:9"])).toEqual({ stale: false, committed: new Set() });
	});

	it("leaves out the sealed head once D1 has committed it", () => {
		expect(reconcile(snapshot, ["inc:5"])).toEqual({ stale: false, committed: new Set([5]) });
	});

	it("is stale when a later batch was committed after the snapshot", () => {
		expect(reconcile(snapshot, ["inc:6"]).stale).toBe(true);
		expect(reconcile(snapshot, ["inc:7"]).stale).toBe(true);
		expect(reconcile({ ...snapshot, sealed: [] }, ["inc:7"]).stale).toBe(true);
	});
});

describe("GET /v1/usage before the flush", () => {
	it("shows usage as soon as it is aggregated, once in every state of its flush", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const hour = previousHour(clock.start);
		const minute = hour + 3 * MINUTE;
		const usage = (quantity: string, events: number) => [
			{ sku: "tokens", unit: "token", period: iso(hour), quantity: Number(quantity), quantityDecimal: quantity, events },
		];
		await deliver([
			eventsMessage(`${tenant.id}/m1`, tenant.id, [queuedEvent({ id: "u1", timestamp: minute, usage: tokens(1_500_000) })]),
		]);

		// Open: only the aggregator has it.
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual(usage("1.5", 1));

		// Sealed, and D1 refused it.
		await runInDurableObject(stub, (instance) => failD1(instance, 1));
		expect((await flushVia(tenant)).status).toBe(503);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual(usage("1.5", 1));

		// A new event while the batch is sealed: open beside sealed.
		await deliver([
			eventsMessage(`${tenant.id}/m2`, tenant.id, [queuedEvent({ id: "u2", timestamp: minute, usage: tokens(250_000) })]),
		]);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual(usage("1.75", 2));

		// D1 committed the sealed batch but the aggregator crashed before clearing it: the ledger tells.
		await runInDurableObject(stub, (instance) => crashAfterD1Commit(instance, 1));
		expect((await flushVia(tenant)).status).toBe(503);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual(usage("1.75", 2));

		// Flushed: D1 alone.
		expect((await flushVia(tenant)).status).toBe(200);
		expect(await usageOf(tenant, hour, hour + HOUR)).toEqual(usage("1.75", 2));
		expect((await stub.metrics()).oldestUnflushedMs).toBeNull();
	});
});
