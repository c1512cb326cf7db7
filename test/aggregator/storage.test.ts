// The dedupe window's storage cost: bytes of Durable Object SQLite per remembered event id.
// `npx vitest run --config test/vitest.config.ts test/aggregator/storage.test.ts` prints the
// figure the README's storage estimate comes from.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { uuidv7 } from "../../src/shared/ids";
import { uniqueTenantId } from "../helpers";

const EVENTS = 20_000;
const SLICE = 1000;

it("remembers an event id in at most 50 bytes of SQLite storage", async () => {
	const tenant = uniqueTenantId("storage");
	const stub = env.AGGREGATOR.getByName(tenant);
	const now = Date.now();
	// One event first, so the schema and fixed pages are in place before measuring.
	await stub.ingest(tenant, [{ id: uuidv7(now), event: "warmup", timestamp: now }]);
	const before = await runInDurableObject(stub, (_instance, state) => state.storage.sql.databaseSize);
	for (let start = 0; start < EVENTS; start += SLICE) {
		const slice: QueuedEvent[] = Array.from({ length: SLICE }, (_, i) => ({
			id: uuidv7(now + start + i),
			event: "api_call",
			timestamp: now,
		}));
		expect(await stub.ingest(tenant, slice)).toEqual({ accepted: SLICE, duplicates: 0, refused: [] });
	}
	const after = await runInDurableObject(stub, (_instance, state) => state.storage.sql.databaseSize);
	const perEvent = (after - before) / EVENTS;
	console.log(`dedupe storage: ${perEvent.toFixed(1)} bytes per remembered UUIDv7 event id (${EVENTS} events)`);
	expect(perEvent).toBeGreaterThan(36);
	// 36 characters of UUIDv7 plus quotes and a comma in a packed chunk; no index.
	expect(perEvent).toBeLessThanOrEqual(50);
});
