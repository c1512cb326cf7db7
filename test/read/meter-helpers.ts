// Meter test helpers: meters created, fed and queried through the API and the aggregator, and the
// shapes of a meter query and its answer (the model answers must equal is in meter-model.ts).
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { parseEventsBody, redactionKeys } from "../../src/event/validate";
import type { TenantMetrics } from "../../src/read/metrics";
import { call, getJson, postJson, type TestTenant } from "../helpers";

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const iso = (ms: number) => new Date(ms).toISOString();

// ---- Meters and events through the API ----

export type Scalar = string | number | boolean;
export interface MeterBody {
	slug: string;
	eventType: string;
	aggregation: "SUM" | "COUNT" | "MIN" | "MAX" | "AVG" | "UNIQUE_COUNT" | "LATEST";
	valueProperty?: string;
	groupBy?: Record<string, string>;
	filter?: Record<string, Scalar | Scalar[]>;
}

export async function createMeter(tenant: TestTenant, body: MeterBody): Promise<void> {
	const response = await postJson("/v1/meters", body, tenant.readKey);
	expect(response.status, await response.clone().text()).toBe(201);
}

export async function deleteMeter(tenant: TestTenant, slug: string): Promise<void> {
	expect((await call(`/v1/meters/${slug}`, { method: "DELETE", key: tenant.readKey })).status).toBe(200);
}

/** An event as the app POSTs it. */
export interface WireEvent {
	id: string;
	event: string;
	timestamp: number;
	customerId?: string;
	properties?: Record<string, unknown>;
	usage?: { sku: string; quantity: number };
}

/** POSTs events to /v1/events (the real queue carries them to the aggregator). */
export async function postEvents(tenant: TestTenant, events: WireEvent[]): Promise<void> {
	const response = await postJson("/v1/events", { events }, tenant.writeKey);
	expect(response.status).toBe(202);
	expect(await response.json()).toEqual({ accepted: events.length, ids: events.map((event) => event.id) });
}

/** Validates events as the edge does and hands them straight to the tenant's aggregator; returns how many were new. */
export async function ingestDirect(tenant: TestTenant, events: WireEvent[], slice = 500): Promise<number> {
	const queued: QueuedEvent[] = [];
	// The edge takes at most 1,000 events a request; the aggregator takes a slice of any size.
	for (let i = 0; i < events.length; i += 1000) {
		const parsed = parseEventsBody({ events: events.slice(i, i + 1000) }, Date.now(), redactionKeys(env.REDACT_KEYS));
		expect(parsed.issues).toEqual([]);
		queued.push(...parsed.events);
	}
	let accepted = 0;
	for (let i = 0; i < queued.length; i += slice) {
		const result = await env.AGGREGATOR.getByName(tenant.id).ingest(tenant.id, queued.slice(i, i + slice));
		expect(result.refused).toEqual([]);
		accepted += result.accepted;
	}
	return accepted;
}

export function metricsOf(tenant: TestTenant): Promise<TenantMetrics> {
	return getJson<TenantMetrics>("/v1/metrics", tenant.readKey);
}

/** Waits (on real timers: only Date is frozen) until the aggregator has consumed `consumed` events in all. */
export async function untilConsumed(tenant: TestTenant, consumed: number): Promise<void> {
	for (let i = 0; i < 600; i++) {
		const seen = (await metricsOf(tenant)).consumed;
		if (seen >= consumed) return expect(seen).toBe(consumed);
		await new Promise((resolve) => setTimeout(resolve, 25));
	}
	throw new Error(`the queue did not deliver ${consumed} events`);
}

export async function flush(tenant: TestTenant): Promise<number> {
	const response = await call("/v1/flush", { method: "POST", key: tenant.writeKey });
	expect(response.status).toBe(200);
	return (await response.json<{ flushed: number }>()).flushed;
}

/** D1's meter rows of a tenant. */
export async function d1MeterRows(tenant: TestTenant): Promise<number> {
	const row = await env.DB.prepare("SELECT count(*) AS n FROM meter_rollups WHERE tenant = ?1").bind(tenant.id).first<{ n: number }>();
	return row!.n;
}

// ---- Queries ----

export type WindowSize = "MINUTE" | "HOUR" | "DAY" | "MONTH";
export interface MeterQuery {
	from?: number;
	to?: number;
	windowSize?: WindowSize;
	windowTimeZone?: string;
	customerId?: string;
	groupBy?: string[];
	filter?: Record<string, string>;
}

export interface QueryPoint {
	windowStart: string;
	windowEnd: string;
	value: number | null;
	valueDecimal: string | null;
	customerId: string | null;
	groupBy: Record<string, string | null>;
	estimated?: true;
}
export interface QueryAnswer {
	meter: string;
	aggregation: string;
	from: string;
	to: string;
	windowSize: string | null;
	windowTimeZone: string;
	data: QueryPoint[];
}

export function queryPath(slug: string, q: MeterQuery): string {
	const params = new URLSearchParams();
	if (q.from !== undefined) params.set("from", iso(q.from));
	if (q.to !== undefined) params.set("to", iso(q.to));
	if (q.windowSize) params.set("windowSize", q.windowSize);
	if (q.windowTimeZone) params.set("windowTimeZone", q.windowTimeZone);
	if (q.customerId !== undefined) params.set("customerId", q.customerId);
	if (q.groupBy) params.set("groupBy", q.groupBy.join(","));
	for (const [key, value] of Object.entries(q.filter ?? {})) params.set(`filter[${key}]`, value);
	const text = params.toString();
	return `/v1/meters/${slug}/query${text ? `?${text}` : ""}`;
}

export function queryMeter(tenant: TestTenant, slug: string, q: MeterQuery): Promise<QueryAnswer> {
	return getJson<QueryAnswer>(queryPath(slug, q), tenant.readKey);
}
