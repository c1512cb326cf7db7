// One tenant's key never reaches another tenant's data: usage, stats, metrics and flushes are the
// caller's own, and a tenant named in the query or body is refused with nothing enqueued.
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { aggregator, d1Usage, EVENT_HOUR, freezeClock, makeEvent, pendingRowCount } from "../aggregator/helpers";
import { call, createTenant, eventsRequest, ingest } from "../helpers";
import { metricsWith, seedEvents, seedUsage } from "../read/helpers";
import { expectError } from "./helpers";

afterEach(() => {
	vi.useRealTimers();
});

describe("tenant isolation", () => {
	const HOUR = "2026-03-10T13:00:00.000Z";
	const MINUTE = "2026-03-10T13:59:00.000Z";
	const USAGE = "/v1/usage?from=2026-03-01&to=2026-04-01&granularity=month";
	const STATS = "/v1/stats?from=2026-03-10&to=2026-03-11&granularity=day";

	async function json<T>(path: string, key: string): Promise<{ status: number; body: T }> {
		const response = await call(path, { key });
		return { status: response.status, body: await response.json<T>() };
	}

	it("shows another tenant's usage to no one but its own read key", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		await seedUsage(a.id, [{ sku: "tokens", hour: HOUR, micros: "5000000", events: 2 }]);
		expect(await json(USAGE, b.readKey)).toEqual({
			status: 200,
			body: {
				tenant: b.id,
				from: "2026-03-01T00:00:00.000Z",
				to: "2026-04-01T00:00:00.000Z",
				granularity: "month",
				items: [],
				adjustments: [],
			},
		});
		const own = await json<{ tenant: string; items: unknown[] }>(USAGE, a.readKey);
		expect(own.body.tenant).toBe(a.id);
		expect(own.body.items).toEqual([
			{ sku: "tokens", unit: "unit", period: "2026-03-01T00:00:00.000Z", quantity: 5, quantityDecimal: "5", events: 2 },
		]);
	});

	it("shows another tenant's stats to no one but its own read key", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		await seedEvents(a.id, [{ event: "api_call", minute: MINUTE, count: 3 }]);
		expect(await json(STATS, b.readKey)).toEqual({
			status: 200,
			body: { tenant: b.id, from: "2026-03-10T00:00:00.000Z", to: "2026-03-11T00:00:00.000Z", granularity: "day", items: [] },
		});
		const own = await json<{ items: { event: string; count: number }[] }>(STATS, a.readKey);
		expect(own.body.items.map(({ event, count }) => ({ event, count }))).toEqual([{ event: "api_call", count: 3 }]);
	});

	it.each([USAGE, STATS])("answers 400 to %s naming another tenant in the query", async (path) => {
		const [a, b] = [await createTenant(), await createTenant()];
		await seedUsage(a.id, [{ sku: "tokens", hour: HOUR, micros: "1000000" }]);
		await expectError(await call(`${path}&tenant=${a.id}`, { key: b.readKey }), 400, "invalid_request", [
			{ path: "tenant", message: "unknown query parameter" },
		]);
		await expectError(await call(`/v1/usage?tenant=${a.id}`, { key: b.readKey }), 400, "invalid_request", [
			{ path: "tenant", message: "unknown query parameter" },
		]);
	});

	it("refuses a tenant field in an event or beside a batch, and enqueues nothing", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		const one = await ingest(eventsRequest(JSON.stringify({ event: "a", tenant: a.id }), b.writeKey));
		await expectError(one.response, 400, "invalid_request", [{ index: 0, path: "tenant", message: "unknown field" }]);
		expect(one.queue.calls).toEqual([]);
		const batch = await ingest(eventsRequest(JSON.stringify({ tenant: a.id, events: [{ event: "a" }] }), b.writeKey));
		await expectError(batch.response, 400, "invalid_request", [{ path: "tenant", message: "unknown field" }]);
		expect(batch.queue.calls).toEqual([]);
	});

	it("refuses a tenant named in the query of POST /v1/events and enqueues nothing", async () => {
		const [a, b] = [await createTenant(), await createTenant()];
		const request = eventsRequest('{"event":"a"}', b.writeKey);
		const { response, queue } = await ingest(new Request(`${request.url}?tenant=${a.id}`, request));
		await expectError(response, 400, "invalid_request", [{ path: "tenant", message: "unknown query parameter" }]);
		expect(queue.calls).toEqual([]);
	});

	it("never flushes another tenant's aggregator, whatever the query or body names", async () => {
		freezeClock();
		const [a, b] = [await createTenant(), await createTenant()];
		await aggregator(a.id).ingest(a.id, [makeEvent({ usage: { sku: "tokens", unit: "token", micros: 2_000_000 } })]);
		for (const key of [b.writeKey, b.readKey]) {
			await expectError(await call(`/v1/flush?tenant=${a.id}`, { method: "POST", key }), 400, "invalid_request", [
				{ path: "tenant", message: "unknown query parameter" },
			]);
			// The flush takes no body: a tenant named there is never read.
			const response = await call("/v1/flush", { method: "POST", key, body: JSON.stringify({ tenant: a.id }) });
			expect(response.status).toBe(200);
			expect(await response.json()).toEqual({ flushed: 0 });
		}
		expect(await runInDurableObject(aggregator(a.id), (_, state) => pendingRowCount(state))).toBe(2);
		expect(await d1Usage(a.id)).toEqual([]);

		const own = await call("/v1/flush", { method: "POST", key: a.readKey });
		// 1 usage + 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await own.json()).toEqual({ flushed: 14 });
		expect(await d1Usage(a.id)).toEqual([{ sku: "tokens", unit: "token", hour: EVENT_HOUR, micros: "2000000", events: 1 }]);
	});

	it("GET /v1/metrics shows only the caller's tenant", async () => {
		freezeClock();
		const [a, b] = [await createTenant(), await createTenant()];
		await aggregator(a.id).ingest(a.id, [makeEvent(), makeEvent()]);
		expect(await json(`/v1/metrics`, b.readKey)).toEqual({ status: 200, body: { ...metricsWith(b), destinations: [] } });
		await expectError(await call(`/v1/metrics?tenant=${a.id}`, { key: b.readKey }), 400, "invalid_request", [
			{ path: "tenant", message: "unknown query parameter" },
		]);
		const own = await json<{ tenant: string; consumed: number; aggregated: number }>("/v1/metrics", a.readKey);
		expect(own.body).toMatchObject({ tenant: a.id, consumed: 2, aggregated: 2 });
	});
});
