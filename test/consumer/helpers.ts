// Consumer test helpers: queued events and messages, the real queue entry point, a look inside a
// tenant's real aggregator, and the dead letters: D1's rows, and the admin API that lists and
// replays them.
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import type { TenantAggregator } from "../../src/aggregator/aggregator";
import type { EventsJson, QueuedEvent } from "../../src/event/model";
import type { DeadLetterRow as StoredDeadLetter } from "../../src/sinks/d1/dead-letters";
import { d1Rows, EXACT_MICROS } from "../aggregator/helpers";
import { ADMIN_TOKEN, getJson, postJson } from "../helpers";

export const QUEUE = "meterline-events";

const HOUR = 3_600_000;

/** The start of the UTC hour before now (the real or the frozen clock): inside the dedupe window whenever the tests run. */
export function recentHour(): number {
	const now = Date.now();
	return now - (now % HOUR) - HOUR;
}

let next = 0;
/** A valid queued event, half an hour into the previous UTC hour; ids are unique unless overridden. */
export function queuedEvent(overrides: Partial<QueuedEvent> = {}): QueuedEvent {
	return { id: `ev-${next++}`, event: "api_call", timestamp: recentHour() + HOUR / 2, ...overrides };
}

export interface TestMessage {
	id: string;
	timestamp: Date;
	attempts: number;
	body: unknown;
}

export function eventsMessage(id: string, tenant: string, events: QueuedEvent[], attempts = 1): TestMessage {
	return { id, timestamp: new Date(Date.UTC(2026, 10, 20)), attempts, body: { v: 1, tenant, events } };
}

export function rawMessage(id: string, body: unknown, attempts = 1): TestMessage {
	return { id, timestamp: new Date(Date.UTC(2026, 10, 20)), attempts, body };
}

/** What the runtime reports after a queue handler ran (FetcherQueueResult). */
export interface QueueOutcome {
	outcome: string;
	ackAll: boolean;
	retryBatch: { retry: boolean; delaySeconds?: number };
	explicitAcks: string[];
	retryMessages: { msgId: string; delaySeconds?: number }[];
}

/**
 * Delivers a batch to the Worker's real queue handler through `exports.default.queue()`. Unlike
 * `createMessageBatch()` + `getQueueResult()` (which drop retry options in vitest-plugin 1.5),
 * the runtime's result carries each retry's delaySeconds.
 */
export function deliver(messages: TestMessage[]): Promise<QueueOutcome> {
	const handler = exports.default as unknown as { queue(queue: string, messages: TestMessage[]): Promise<QueueOutcome> };
	return handler.queue(QUEUE, messages);
}

/** Ids the tenant's aggregator has accepted, sorted: its dedupe table is written in the same transaction as the rollups. */
export function seenIds(tenant: string): Promise<string[]> {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (_instance, state) =>
		state.storage.sql
			.exec<{ ids: string }>("SELECT ids FROM seen_chunks")
			.toArray()
			.flatMap((row) => JSON.parse(row.ids) as string[])
			.sort(),
	);
}

/** The aggregator's open usage deltas, as (sku, unit, hour, micros, events). */
export function pendingUsage(tenant: string): Promise<{ sku: string; unit: string; hour: string; micros: string; events: number }[]> {
	return runInDurableObject(env.AGGREGATOR.getByName(tenant), (_instance, state) =>
		state.storage.sql
			.exec<{ sku: string; unit: string; hour: string; micros: string; events: number }>(
				`SELECT sku, unit, hour, ${EXACT_MICROS}, events FROM pending_usage ORDER BY sku, unit, hour`,
			)
			.toArray(),
	);
}

/**
 * Makes a tenant's aggregator reject every slice, through the aggregator's own guard: an
 * aggregator belongs to the first tenant that sends it events (claimTenant), so once another
 * tenant has claimed it, ingest(tenant, …) throws. Nothing is faked: it is the real object.
 */
export async function breakAggregatorOf(tenant: string): Promise<void> {
	await runInDurableObject(env.AGGREGATOR.getByName(tenant), (instance: TenantAggregator) => {
		// workerd's RPC serves only the class's own methods: shadowing ingest on the instance makes
		// every ingest call fail ("does not implement the method"), a real RPC failure.
		instance.ingest = async () => {
			throw new Error("injected aggregator failure");
		};
	});
}

export interface RpcLog {
	getByName: string[];
	ingest: { name: string; tenant: string; ids: string[] }[];
}

/**
 * The real AGGREGATOR namespace, wrapped only to log the consumer's calls; every call is
 * delegated to the real Durable Object.
 */
export function loggingAggregators(): { namespace: Env["AGGREGATOR"]; log: RpcLog } {
	const log: RpcLog = { getByName: [], ingest: [] };
	const namespace = {
		getByName(name: string) {
			log.getByName.push(name);
			const stub = env.AGGREGATOR.getByName(name);
			return {
				// The consumer sends the events as JSON text, one array per message.
				ingest(tenant: string, events: QueuedEvent[] | EventsJson) {
					const list = Array.isArray(events) ? events : events.json.flatMap((text) => JSON.parse(text) as QueuedEvent[]);
					log.ingest.push({ name, tenant, ids: list.map((event) => event.id) });
					return stub.ingest(tenant, events);
				},
			};
		},
	};
	return { namespace: namespace as unknown as Env["AGGREGATOR"], log };
}

/** A D1 dead_letters row as the tests read it (without its paging sequence number). */
export type DeadLetterRow = Omit<StoredDeadLetter, "seq">;

/** D1's dead_letters rows whose id starts with `prefix`, by id. */
export function deadLetterRows(prefix: string): Promise<DeadLetterRow[]> {
	return d1Rows(
		"SELECT id, tenant, body, error, attempts, first_failed_at, last_failed_at, replayed_at FROM dead_letters WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
		prefix,
	);
}

/** A timestamp as the admin API lists it. */
export const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export interface DeadLetterItem {
	id: string;
	tenant: string | null;
	error: string;
	attempts: number;
	firstFailedAt: string;
	lastFailedAt: string;
	replayedAt: string | null;
	body: unknown;
}

export async function listDeadLetters(query = ""): Promise<{ items: DeadLetterItem[]; nextCursor: string | null }> {
	return getJson(`/v1/admin/dead-letters${query}`, ADMIN_TOKEN);
}

export async function replay(body: unknown): Promise<{ replayed: string[]; skipped: { id: string; reason: string }[] }> {
	const response = await postJson("/v1/admin/dead-letters/replay", body, ADMIN_TOKEN);
	if (response.status !== 200) throw new Error(`replay: ${response.status} ${await response.text()}`);
	return response.json();
}
