// The raw-event archive in R2: every accepted event once, in a Parquet part per tenant and UTC
// date of event time, every column as sent (read back with hyparquet), duplicates never; R2
// failing holds up neither the D1 flush nor any event, and a rewrite after a crash lands on the
// same keys, so no event is ever in two files. Listed and streamed by GET /v1/export.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { describe, expect, it } from "vitest";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import type { QueuedEvent } from "../../src/event/model";
import { deliver, eventsMessage } from "../consumer/helpers";
import { advanceClock, call, createTenant, getJson, InjectedFault, useFrozenClock, type TestTenant } from "../helpers";
import { archiveOn, freezeClock, internals } from "./helpers";

const NOW = Date.UTC(2100, 2, 10, 15);
useFrozenClock(() => freezeClock(NOW));

const YESTERDAY = Date.UTC(2100, 2, 9, 23, 59, 59, 999);
const TODAY = Date.UTC(2100, 2, 10, 0, 0, 0, 0);

function events(): QueuedEvent[] {
	return [
		{
			id: "e1",
			event: "api_call",
			timestamp: YESTERDAY,
			userId: "u1",
			customerId: "acme",
			sessionId: "s1",
			route: "/v1/items/:id",
			country: "DE",
			properties: { model: "small", nested: { n: 1 } },
			performance: { duration: 12.5, statusCode: 200 },
			usage: { sku: "tokens", unit: "token", micros: 1_234_567_890_123 },
		},
		{ id: "e2", event: "page_view", timestamp: TODAY },
		{ id: "e3", event: "api_call", timestamp: TODAY + 1, usage: { sku: "tokens", unit: "token", micros: 1 } },
	];
}

const row = (event: QueuedEvent, receivedAt: number) => ({
	id: event.id,
	event: event.event,
	timestamp: new Date(event.timestamp),
	received_at: new Date(receivedAt),
	user_id: event.userId ?? null,
	customer_id: event.customerId ?? null,
	session_id: event.sessionId ?? null,
	usage_sku: event.usage?.sku ?? null,
	usage_quantity: event.usage ? { 1_234_567_890_123: "1234567.890123", 1: "0.000001" }[event.usage.micros]! : null,
	usage_unit: event.usage?.unit ?? null,
	duration: event.performance?.duration ?? null,
	status_code: event.performance?.statusCode ?? null,
	route: event.route ?? null,
	country: event.country ?? null,
	properties: event.properties ? JSON.stringify(event.properties) : null,
});

interface ExportList {
	files: { date: string; part: string; bytes: number; url: string }[];
	nextCursor: string | null;
}

async function archivedRows(tenant: TestTenant, from = "2100-03-09", to = "2100-03-10"): Promise<Record<string, unknown[]>> {
	const list = await getJson<ExportList>(`/v1/export?from=${from}&to=${to}`, tenant.readKey);
	const byDate: Record<string, unknown[]> = {};
	for (const file of list.files) {
		const response = await call(file.url, { key: tenant.readKey });
		expect([response.status, response.headers.get("content-type")]).toEqual([200, "application/vnd.apache.parquet"]);
		const buffer = await response.arrayBuffer();
		expect(buffer.byteLength).toBe(file.bytes);
		(byDate[file.date] ??= []).push(...(await parquetReadObjects({ file: buffer })));
	}
	return byDate;
}

async function r2Keys(tenant: TestTenant): Promise<string[]> {
	return (await env.ARCHIVE.list({ prefix: `tenant=${tenant.id}/` })).objects.map((o) => o.key);
}

describe("the raw-event archive", () => {
	it("archives every accepted event once, per event date, with every column as sent, and never a duplicate", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		await archiveOn(tenant.id);
		await deliver([eventsMessage("m1", tenant.id, events())]);
		// A redelivery and a duplicate id: neither is archived again.
		await deliver([eventsMessage("m1", tenant.id, events()), eventsMessage("m2", tenant.id, [events()[1]!])]);
		// A slice of a duplicate and a new event: only the new one is archived (not the slice as sent).
		const e4: QueuedEvent = { id: "e4", event: "signup", timestamp: TODAY + 2 };
		await deliver([eventsMessage("m3", tenant.id, [events()[2]!, e4])]);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		expect(await r2Keys(tenant)).toEqual([]);

		advanceClock(60_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		const [e1, e2, e3] = events();
		expect(await archivedRows(tenant)).toEqual({
			"2100-03-09": [row(e1!, NOW)],
			"2100-03-10": [row(e2!, NOW), row(e3!, NOW), row(e4, NOW)],
		});
		const keys = await r2Keys(tenant);
		// Both dates' parts are named after the first sealed range: r000000000001.
		expect(keys.map((key) => key.replace(/\/[^/]+-(r\d{12})\.parquet$/, "/…-$1"))).toEqual([
			`tenant=${tenant.id}/date=2100-03-09/…-r000000000001`,
			`tenant=${tenant.id}/date=2100-03-10/…-r000000000001`,
		]);
		expect((await getJson<{ archived: number }>("/v1/metrics", tenant.readKey)).archived).toBe(4);
		// Nothing is left to archive: no further alarm writes anything, and ARCHIVE_INTERVAL_MS "0" (the
		// tests' default) keeps nothing at all.
		advanceClock(10 * 60_000);
		await runDurableObjectAlarm(stub);
		expect(await r2Keys(tenant)).toEqual(keys);
	});

	it("writes min/max statistics only on the columns a reader prunes by, and ids without a dictionary", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		await archiveOn(tenant.id);
		await deliver([eventsMessage("m1", tenant.id, events().slice(1))]);
		advanceClock(60_000);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		const [key] = await r2Keys(tenant);
		const metadata = parquetMetadata(await (await env.ARCHIVE.get(key!))!.arrayBuffer());
		const chunks = metadata.row_groups[0]!.columns.map((chunk) => chunk.meta_data!);
		const stats = Object.fromEntries(chunks.map((meta) => [meta.path_in_schema.join("."), meta.statistics ?? null]));
		expect(Object.keys(stats).filter((name) => stats[name] !== null)).toEqual([
			"event",
			"timestamp",
			"received_at",
			"duration",
			"status_code",
		]);
		expect([stats.event!.min_value, stats.event!.max_value]).toEqual(["api_call", "page_view"]);
		expect([stats.timestamp!.min_value, stats.timestamp!.max_value]).toEqual([new Date(TODAY), new Date(TODAY + 1)]);
		expect(chunks.find((meta) => meta.path_in_schema[0] === "id")!.encodings).not.toContain("RLE_DICTIONARY");
	});

	it("keeps events while R2 fails, flushes D1 regardless, and rewrites the same parts after a crash", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		const writes: string[] = [];
		await archiveOn(tenant.id);
		await runInDurableObject(stub, (instance: TenantAggregator) => {
			const sinks = internals(instance).sinks;
			const real = sinks.archive;
			let call = 0;
			sinks.archive = async (key, body) => {
				call++;
				writes.push(key);
				if (call === 1) throw new InjectedFault("R2 unavailable");
				await real(key, body);
				// The object is written, then the aggregator "crashes" before clearing its rows.
				if (call === 2) throw new InjectedFault("crash after the put");
			};
		});
		await deliver([eventsMessage("m1", tenant.id, events())]);
		advanceClock(60_000);
		await runDurableObjectAlarm(stub);
		// D1 has the usage although R2 failed.
		const usage = await getJson<{ items: { quantityDecimal: string }[] }>(
			`/v1/usage?granularity=month&from=2100-03-01&to=2100-04-01`,
			tenant.readKey,
		);
		expect(usage.items.map((i) => i.quantityDecimal)).toEqual(["1234567.890124"]);
		for (let i = 0; i < 4; i++) {
			advanceClock(10 * 60_000);
			await runDurableObjectAlarm(stub);
		}
		const [e1, e2, e3] = events();
		expect(await archivedRows(tenant)).toEqual({ "2100-03-09": [row(e1!, NOW)], "2100-03-10": [row(e2!, NOW), row(e3!, NOW)] });
		// The failed, the crashed and the final attempt all wrote the same two keys.
		expect(new Set(writes)).toEqual(new Set(await r2Keys(tenant)));
		expect((await r2Keys(tenant)).length).toBe(2);
	});

	it("splits a slice over the row size into several outbox rows, from the consumer's text and from objects, each event once", async () => {
		const tenant = await createTenant();
		const stub = env.AGGREGATOR.getByName(tenant.id);
		await archiveOn(tenant.id);
		// 10 KB of properties per event: 120 events (1.2 million characters) pass one row's million.
		const big = (prefix: string, n: number): QueuedEvent[] =>
			Array.from({ length: n }, (_, i) => ({
				id: `${prefix}${i}`,
				event: "blob",
				timestamp: TODAY + i,
				properties: { pad: "x".repeat(10_000) },
			}));
		const sent = big("c", 120);
		await deliver(Array.from({ length: 10 }, (_, m) => eventsMessage(`m${m}`, tenant.id, sent.slice(m * 12, m * 12 + 12))));
		const direct = big("d", 120);
		expect(await stub.ingest(tenant.id, direct)).toEqual({ accepted: 120, duplicates: 0, refused: [] });
		const rows = await runInDurableObject(stub, (_: TenantAggregator, state) =>
			state.storage.sql.exec<{ events: string }>("SELECT events FROM pending_archive ORDER BY seq").toArray(),
		);
		const kept = rows.map((r) => JSON.parse(r.events) as QueuedEvent[]);
		// The consumer's slice splits between whole messages (8 of 12 events fit a row), the objects between events.
		expect(kept.map((list) => list.length)).toEqual([96, 24, 99, 21]);
		expect(rows.every((r) => r.events.length <= 1_000_000)).toBe(true);
		expect(kept.flat()).toEqual([...sent, ...direct]);
	});

	it("answers 400 for a bad range and 404 for a missing part, and lists nothing of another tenant", async () => {
		const [tenant, other] = await Promise.all([createTenant(), createTenant()]);
		await archiveOn(other.id);
		await deliver([eventsMessage("m1", other.id, events())]);
		advanceClock(60_000);
		await runDurableObjectAlarm(env.AGGREGATOR.getByName(other.id));
		expect(await getJson(`/v1/export?from=2100-03-01&to=2100-03-31`, tenant.readKey)).toEqual({
			tenant: tenant.id,
			from: "2100-03-01",
			to: "2100-03-31",
			files: [],
			nextCursor: null,
		});
		expect((await call("/v1/export?from=2100-02-30", { key: tenant.readKey })).status).toBe(400);
		expect((await call("/v1/export?from=2100-03-10&to=2100-03-09", { key: tenant.readKey })).status).toBe(400);
		expect((await call("/v1/export/2100-03-10/x.parquet", { key: tenant.readKey })).status).toBe(404);
		expect((await call("/v1/export", { key: tenant.writeKey })).status).toBe(403);
	});
});
