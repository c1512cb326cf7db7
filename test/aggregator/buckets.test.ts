// ingest()'s rollups: counters per event name and UTC minute (errors, durations), minute and hour
// buckets for out-of-order timestamps, and exact integer usage sums past 2^53.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { uniqueTenantId, useFrozenClock } from "../helpers";
import { aggregator, AT, countOnly, d1Events, d1Usage, freezeClock, makeEvent, pendingUsage, usage } from "./helpers";

useFrozenClock(freezeClock);

describe("counters per event name and UTC minute", () => {
	it("counts errors for status codes of 500 and above only", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const statuses = [200, 404, 499, 500, 503, 599, undefined];

		await stub.ingest(
			tenant,
			statuses.map((statusCode) => makeEvent(statusCode === undefined ? {} : { performance: { statusCode } })),
		);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([{ ...countOnly("api_call", "2100-03-10T13:59:00.000Z", 7), errors: 3 }]);
	});

	it("keeps duration count, sum, min and max per event name", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);

		await stub.ingest(tenant, [
			makeEvent({ performance: { duration: 12.5 } }),
			makeEvent({ performance: { duration: 40, statusCode: 502 } }),
			makeEvent(),
			makeEvent({ performance: { duration: 3 } }),
			makeEvent({ event: "page_view", performance: { duration: 7.25 } }),
			makeEvent({ event: "signup" }),
		]);
		// A later slice for the same minute merges into the same row: min and max keep the extremes.
		await stub.ingest(tenant, [
			makeEvent({ performance: { duration: 1 } }),
			makeEvent({ event: "page_view", performance: { statusCode: 200 } }),
		]);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([
			{
				event: "api_call",
				minute: "2100-03-10T13:59:00.000Z",
				count: 5,
				errors: 1,
				duration_count: 4,
				duration_sum: 56.5,
				duration_min: 1,
				duration_max: 40,
			},
			{
				event: "page_view",
				minute: "2100-03-10T13:59:00.000Z",
				count: 2,
				errors: 0,
				duration_count: 1,
				duration_sum: 7.25,
				duration_min: 7.25,
				duration_max: 7.25,
			},
			countOnly("signup", "2100-03-10T13:59:00.000Z", 1),
		]);
	});

	it("merges flushed minutes in D1 without letting an empty minute's null win min or max", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);

		await stub.ingest(tenant, [makeEvent({ performance: { duration: 9 } })]);
		await stub.flush();
		await stub.ingest(tenant, [makeEvent()]);
		await stub.flush();
		await stub.ingest(tenant, [
			makeEvent({ performance: { duration: 2 } }),
			makeEvent({ performance: { duration: 30, statusCode: 500 } }),
		]);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([
			{
				event: "api_call",
				minute: "2100-03-10T13:59:00.000Z",
				count: 4,
				errors: 1,
				duration_count: 3,
				duration_sum: 41,
				duration_min: 2,
				duration_max: 30,
			},
		]);
	});
});

describe("buckets for out-of-order timestamps", () => {
	it("puts events in reverse time order into their own minute and hour across an hour boundary", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const reverse = [
			AT["14:01:30.000"],
			AT["14:00:00.000"],
			AT["13:59:59.999"],
			AT["13:59:30.000"],
			AT["13:59:00.000"],
			AT["13:58:00.000"],
		];

		await stub.ingest(
			tenant,
			reverse.map((timestamp, i) => makeEvent({ timestamp, usage: usage(10 ** i) })),
		);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([
			countOnly("api_call", "2100-03-10T13:58:00.000Z", 1),
			countOnly("api_call", "2100-03-10T13:59:00.000Z", 3),
			countOnly("api_call", "2100-03-10T14:00:00.000Z", 1),
			countOnly("api_call", "2100-03-10T14:01:00.000Z", 1),
		]);
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "111100", events: 4 },
			{ sku: "tokens", unit: "token", hour: "2100-03-10T14:00:00.000Z", micros: "11", events: 2 },
		]);
	});

	it("merges a later slice of earlier timestamps into the buckets an earlier slice opened", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);

		// Shuffled within each slice, and the second slice goes back in time past the hour boundary.
		await stub.ingest(tenant, [
			makeEvent({ timestamp: AT["14:00:00.000"], usage: usage(1) }),
			makeEvent({ timestamp: AT["13:59:59.999"], usage: usage(2) }),
			makeEvent({ timestamp: AT["14:01:30.000"], usage: usage(4, "storage", "GB") }),
		]);
		await stub.ingest(tenant, [
			makeEvent({ timestamp: AT["13:59:00.000"], usage: usage(8) }),
			makeEvent({ timestamp: AT["14:01:30.000"], usage: usage(16) }),
			makeEvent({ timestamp: AT["13:58:00.000"], usage: usage(32, "storage", "GB") }),
			makeEvent({ timestamp: AT["14:00:00.000"], usage: usage(64, "storage", "GB") }),
		]);
		await stub.flush();

		expect(await d1Events(tenant)).toEqual([
			countOnly("api_call", "2100-03-10T13:58:00.000Z", 1),
			countOnly("api_call", "2100-03-10T13:59:00.000Z", 2),
			countOnly("api_call", "2100-03-10T14:00:00.000Z", 2),
			countOnly("api_call", "2100-03-10T14:01:00.000Z", 2),
		]);
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "storage", unit: "GB", hour: "2100-03-10T13:00:00.000Z", micros: "32", events: 1 },
			{ sku: "storage", unit: "GB", hour: "2100-03-10T14:00:00.000Z", micros: "68", events: 2 },
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "10", events: 2 },
			{ sku: "tokens", unit: "token", hour: "2100-03-10T14:00:00.000Z", micros: "17", events: 2 },
		]);
	});
});

describe("exact usage sums", () => {
	it("sums ten quantities of 0.1 to exactly one unit", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const tenth = () => makeEvent({ usage: usage(100_000) });

		// In one slice, across slices before a flush, and across flushes.
		await stub.ingest(tenant, [tenth(), tenth(), tenth(), tenth()]);
		await stub.ingest(tenant, [tenth(), tenth(), tenth()]);
		await stub.flush();
		await stub.ingest(tenant, [tenth(), tenth(), tenth()]);
		await stub.flush();

		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "1000000", events: 10 },
		]);
	});

	it("sums the largest quantities past 2^53 exactly within one slice", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const max = 9_000_000_000_000_000; // 9e9 units, the per-event maximum

		await stub.ingest(tenant, [
			makeEvent({ usage: usage(max) }),
			makeEvent({ usage: usage(max) }),
			makeEvent({ usage: usage(1) }),
			makeEvent({ usage: usage(max) }),
		]);

		await runInDurableObject(stub, (_instance, state) => {
			expect(pendingUsage(state)).toEqual([
				{ batch: 0, sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "27000000000000001", events: 4 },
			]);
		});
		await stub.flush();
		// 27000000000000001 is not a double: a float sum anywhere on the way would round it.
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "27000000000000001", events: 4 },
		]);
	});

	it("sums the largest quantities past 2^53 exactly across slices and flushes", async () => {
		const tenant = uniqueTenantId();
		const stub = aggregator(tenant);
		const max = 9_000_000_000_000_000;

		await stub.ingest(tenant, [makeEvent({ usage: usage(max) }), makeEvent({ usage: usage(max) })]);
		await stub.ingest(tenant, [makeEvent({ usage: usage(max) })]);
		await stub.flush();
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "27000000000000000", events: 3 },
		]);

		await stub.ingest(tenant, [makeEvent({ usage: usage(max) }), makeEvent({ usage: usage(1) })]);
		await stub.flush();
		expect(await d1Usage(tenant)).toEqual([
			{ sku: "tokens", unit: "token", hour: "2100-03-10T13:00:00.000Z", micros: "36000000000000001", events: 5 },
		]);
	});
});
