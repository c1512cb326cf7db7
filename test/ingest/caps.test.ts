// Caps on a tenant's distinct event names and (sku, unit) pairs at POST /v1/events: a request
// adding one past the cap is refused whole, registers nothing and is counted in `capped`; events
// that bypass the edge are refused by the aggregator.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { d1Rows } from "../aggregator/helpers";
import { freezeClock } from "../faults/helpers";
import { createTenant, useFrozenClock } from "../helpers";
import { flushVia, metricsOf, metricsWith } from "../read/helpers";
import { CAP, capError, namedEvents, NEW_NAME, NEW_PAIR, postEvents, tenantThatUsed, untilConsumed } from "./helpers";

// Frozen in 2100: no aggregator alarm flushes by itself, so the metrics stay exact.
const clock = useFrozenClock(freezeClock);

const CAPPED = `capped: a new event name or SKU would pass the tenant's cap (${CAP} event names, ${CAP} SKUs)`;

const pairs = (count: number) => Array.from({ length: count }, (_, i) => ({ event: "use", usage: { sku: `sku-${i}`, quantity: 1 } }));

describe("POST /v1/events past the caps", () => {
	it("lets a tenant use 1000 event names, refuses a request adding a 1001st whole, and keeps the known names working", async () => {
		const tenant = await tenantThatUsed(namedEvents(CAP));

		const refused = await postEvents(tenant, [
			{ event: "name-0" },
			{ event: "brand-new" },
			{ event: "name-999" },
			{ event: "brand-new" },
			{ event: "also-new" },
		]);

		expect(refused).toEqual({
			status: 400,
			body: capError([
				{ index: 1, path: "event", message: NEW_NAME },
				{ index: 3, path: "event", message: NEW_NAME },
				{ index: 4, path: "event", message: NEW_NAME },
			]),
			sent: [],
		});

		const known = await postEvents(tenant, [{ event: "name-0" }, { event: "name-999" }]);
		expect({ status: known.status, sent: known.sent.map((event) => event.event) }).toEqual({
			status: 202,
			sent: ["name-0", "name-999"],
		});
		await untilConsumed(tenant, CAP + 2);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: CAP + 2,
				enqueued: CAP + 2,
				consumed: CAP + 2,
				aggregated: CAP + 2,
				capped: 3,
				oldestUnflushedAgeMs: expect.any(Number),
			}),
		);
	});

	it("lets a tenant use 1000 (sku, unit) pairs, refuses a request adding a 1001st whole, and keeps the known pairs working", async () => {
		const tenant = await tenantThatUsed(pairs(CAP));

		const refused = await postEvents(tenant, [
			{ event: "use", usage: { sku: "sku-0", quantity: 2 } },
			// A known sku with a new unit is a new pair.
			{ event: "use", usage: { sku: "sku-0", quantity: 2, unit: "gb" } },
			{ event: "use", usage: { sku: "fresh", quantity: 1 } },
			{ event: "use" },
		]);

		expect(refused).toEqual({
			status: 400,
			body: capError([
				{ index: 1, path: "usage.sku", message: NEW_PAIR },
				{ index: 2, path: "usage.sku", message: NEW_PAIR },
			]),
			sent: [],
		});

		const known = await postEvents(tenant, [
			{ event: "use", usage: { sku: "sku-0", quantity: 2 } },
			{ event: "use", usage: { sku: "sku-999", quantity: 3, unit: "unit" } },
		]);
		expect({ status: known.status, sent: known.sent.map((event) => event.usage) }).toEqual({
			status: 202,
			sent: [
				{ sku: "sku-0", unit: "unit", micros: 2_000_000 },
				{ sku: "sku-999", unit: "unit", micros: 3_000_000 },
			],
		});
		await untilConsumed(tenant, CAP + 2);
		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: CAP + 2,
				enqueued: CAP + 2,
				consumed: CAP + 2,
				aggregated: CAP + 2,
				capped: 2,
				oldestUnflushedAgeMs: expect.any(Number),
			}),
		);
	});
});

describe("a request refused whole", () => {
	// The producer registers a request's new names only if they all fit: otherwise "first-new"
	// would take the last slot although none of its events was accepted.
	it("registers none of a refused request's new names", async () => {
		const tenant = await tenantThatUsed(namedEvents(CAP - 1));

		const refused = await postEvents(tenant, [{ event: "first-new" }, { event: "second-new" }]);
		expect({ status: refused.status, sent: refused.sent }).toEqual({ status: 400, sent: [] });

		const other = await postEvents(tenant, [{ event: "third-new" }]);
		expect({ status: other.status, sent: other.sent.map((event) => event.event) }).toEqual({ status: 202, sent: ["third-new"] });
	});
});

describe("the capped counter", () => {
	// Reported with the 400 (METRICS_REPORT_MS is 0 here), not left in the isolate's memory.
	it("counts the refused events in capped as soon as the 400 is answered", async () => {
		const tenant = await tenantThatUsed(namedEvents(CAP));

		const refused = await postEvents(tenant, [{ event: "brand-new" }, { event: "name-1" }, { event: "also-new" }]);
		expect(refused.status).toBe(400);

		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, {
				received: CAP,
				enqueued: CAP,
				consumed: CAP,
				aggregated: CAP,
				capped: 2,
				oldestUnflushedAgeMs: expect.any(Number),
			}),
		);
	});
});

describe("events that bypass the edge", () => {
	let next = 0;
	const event = (name: string, usage?: { sku: string; unit: string }): QueuedEvent => ({
		id: `bypass-${next++}`,
		event: name,
		timestamp: clock.start - 60_000,
		...(usage && { usage: { ...usage, micros: 1_000_000 } }),
	});

	it("refuses a new name or (sku, unit) pair past the cap as capped, and counts neither", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const full = Array.from({ length: CAP }, (_, i) => event(`n-${i}`, { sku: `s-${i}`, unit: "unit" }));
		expect(await stub.ingest(tenant.id, full)).toEqual({ accepted: CAP, duplicates: 0, refused: [] });

		const known = event("n-0", { sku: "s-0", unit: "unit" });
		const newName = event("fresh");
		const newPair = event("n-1", { sku: "s-1", unit: "gb" });
		expect(await stub.ingest(tenant.id, [known, newName, newPair])).toEqual({
			accepted: 1,
			duplicates: 0,
			refused: [
				{ id: newName.id, reason: CAPPED },
				{ id: newPair.id, reason: CAPPED },
			],
		});
		// Refused ids are not remembered: sent again, they are refused again, not dropped as duplicates.
		expect(await stub.ingest(tenant.id, [newName])).toEqual({
			accepted: 0,
			duplicates: 0,
			refused: [{ id: newName.id, reason: CAPPED }],
		});

		expect(await metricsOf(tenant)).toEqual(
			metricsWith(tenant, { consumed: CAP + 4, aggregated: CAP + 1, capped: 3, oldestUnflushedAgeMs: expect.any(Number) }),
		);
		// CAP usage + CAP event rows, and 12 series rows per name (4 dimensions × minute, hour, day).
		expect(await (await flushVia(tenant)).json()).toEqual({ flushed: 2 * CAP + 12 * CAP });
		expect(
			await d1Rows(
				"SELECT event, count FROM event_rollups WHERE tenant = ?1 AND event IN ('n-0', 'n-1', 'fresh') ORDER BY event",
				tenant.id,
			),
		).toEqual([
			{ event: "n-0", count: 2 },
			{ event: "n-1", count: 1 },
		]);
		expect(
			await d1Rows(
				"SELECT sku, unit, events FROM usage_rollups WHERE tenant = ?1 AND sku IN ('s-0', 's-1') ORDER BY sku, unit",
				tenant.id,
			),
		).toEqual([
			{ sku: "s-0", unit: "unit", events: 2 },
			{ sku: "s-1", unit: "unit", events: 1 },
		]);
	});
});
