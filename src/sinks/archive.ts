// The raw-event archive in R2: one Parquet file (snappy) per tenant, UTC date of event time and
// sealed range of the aggregator's archive rows, at a key made only of those, so writing a part
// again (a retry, a crash before the rows were cleared) rewrites the same object with the same rows.
import { parquetReadObjects } from "hyparquet";
import { parquetWriteBuffer } from "hyparquet-writer";
import type { QueuedEvent } from "../event/model.js";
import { decimalToMicros, formatMicros } from "../event/quantity.js";

export const PARQUET_TYPE = "application/vnd.apache.parquet";

/** An archived event: as the aggregator accepted it, and when. */
export interface ArchivedEvent extends QueuedEvent {
	receivedAt: number;
}

/** The archive's fixed columns, in file order. */
export const ARCHIVE_COLUMNS = [
	"id",
	"event",
	"timestamp",
	"received_at",
	"user_id",
	"customer_id",
	"session_id",
	"usage_sku",
	"usage_quantity",
	"usage_unit",
	"duration",
	"status_code",
	"route",
	"country",
	"properties",
] as const;

/** `tenant=<id>/date=<YYYY-MM-DD>/` – a tenant id is a slug, so it needs no escaping. */
export function datePrefix(tenant: string, date: string): string {
	return `tenant=${tenant}/date=${date}/`;
}

/**
 * A part's key: its date, the storage incarnation and the sealed range's number, which never
 * repeats within an incarnation. A range sealed before ranges were numbered keeps the old name,
 * after its first archive row (`<incarnation>-<row>`), which no numbered name (`-r<number>`) can take.
 */
export function partKey(tenant: string, date: string, incarnation: string, range: { first: number; part?: number }): string {
	const name = range.part === undefined ? String(range.first).padStart(12, "0") : `r${String(range.part).padStart(12, "0")}`;
	return `${datePrefix(tenant, date)}${incarnation}-${name}.parquet`;
}

const DAY_MS = 86_400_000;

/** Events by the UTC date of their timestamp, in their order (grouped by day number, so each date is formatted once). */
export function byDate(events: readonly ArchivedEvent[]): Map<string, ArchivedEvent[]> {
	const days = new Map<number, ArchivedEvent[]>();
	for (const event of events) {
		const day = Math.floor(event.timestamp / DAY_MS);
		const list = days.get(day);
		if (list) list.push(event);
		else days.set(day, [event]);
	}
	const dates = new Map<string, ArchivedEvent[]>();
	for (const [day, list] of days) dates.set(new Date(day * DAY_MS).toISOString().slice(0, 10), list);
	return dates;
}

/**
 * Columns whose min/max statistics help a reader skip a file or row group: the event name, the two
 * times, the duration and the status. Ids, user and session ids, properties and the like are
 * near-unique or unordered, so their bounds prune nothing, and computing them (a UTF-8 comparison
 * per value) was a visible share of the archive's CPU.
 */
const STATISTICS_COLUMNS: ReadonlySet<string> = new Set(["event", "timestamp", "received_at", "duration", "status_code"]);

/** One Parquet file of events, every column in ARCHIVE_COLUMNS order; the usage quantity exact, as decimal text. */
export function parquetOf(events: readonly ArchivedEvent[]): ArrayBuffer {
	const column = <T>(
		name: (typeof ARCHIVE_COLUMNS)[number],
		type: "STRING" | "TIMESTAMP" | "DOUBLE" | "INT32",
		pick: (e: ArchivedEvent) => T,
	) => ({
		name,
		type,
		data: events.map((e) => pick(e) ?? null),
		nullable: !["id", "event", "timestamp", "received_at"].includes(name),
		statistics: STATISTICS_COLUMNS.has(name),
		// Every id is distinct, so a dictionary never pays: skip the writer's trial of one.
		...(name === "id" ? { encoding: "PLAIN" as const } : {}),
	});
	// Quantities repeat (most events carry the same few), so each is formatted once.
	const decimals = new Map<number, string>();
	const decimal = (micros: number) => {
		let text = decimals.get(micros);
		if (text === undefined) decimals.set(micros, (text = formatMicros(micros)));
		return text;
	};
	return parquetWriteBuffer({
		columnData: [
			column("id", "STRING", (e) => e.id),
			column("event", "STRING", (e) => e.event),
			column("timestamp", "TIMESTAMP", (e) => new Date(e.timestamp)),
			column("received_at", "TIMESTAMP", (e) => new Date(e.receivedAt)),
			column("user_id", "STRING", (e) => e.userId),
			column("customer_id", "STRING", (e) => e.customerId),
			column("session_id", "STRING", (e) => e.sessionId),
			column("usage_sku", "STRING", (e) => e.usage?.sku),
			column("usage_quantity", "STRING", (e) => (e.usage ? decimal(e.usage.micros) : undefined)),
			column("usage_unit", "STRING", (e) => e.usage?.unit),
			column("duration", "DOUBLE", (e) => e.performance?.duration),
			column("status_code", "INT32", (e) => e.performance?.statusCode),
			column("route", "STRING", (e) => e.route),
			column("country", "STRING", (e) => e.country),
			column("properties", "STRING", (e) => (e.properties === undefined ? undefined : JSON.stringify(e.properties))),
		],
		createdBy: "meterline",
	});
}

/** A part's rows back as events (for a backfill); the exact quantity from its decimal text. */
export async function eventsOfParquet(file: ArrayBuffer): Promise<ArchivedEvent[]> {
	const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
	return rows.map((row) => {
		const event: ArchivedEvent = {
			id: row.id as string,
			event: row.event as string,
			timestamp: (row.timestamp as Date).getTime(),
			receivedAt: (row.received_at as Date).getTime(),
		};
		if (row.user_id !== null) event.userId = row.user_id as string;
		if (row.customer_id !== null) event.customerId = row.customer_id as string;
		if (row.session_id !== null) event.sessionId = row.session_id as string;
		if (row.route !== null) event.route = row.route as string;
		if (row.country !== null) event.country = row.country as string;
		if (row.properties !== null) event.properties = JSON.parse(row.properties as string) as Record<string, unknown>;
		if (row.duration !== null || row.status_code !== null) {
			event.performance = {};
			if (row.duration !== null) event.performance.duration = row.duration as number;
			if (row.status_code !== null) event.performance.statusCode = row.status_code as number;
		}
		if (row.usage_sku !== null)
			event.usage = {
				sku: row.usage_sku as string,
				unit: row.usage_unit as string,
				micros: decimalToMicros(row.usage_quantity as string) as number,
			};
		return event;
	});
}

export interface ArchivePart {
	key: string;
	date: string;
	part: string;
	bytes: number;
	uploaded: string;
}

/**
 * A tenant's parts for event dates from..to (inclusive), in key order, at most `max`, after the
 * key `after` when given (a cursor); `next` is the last key when more may follow.
 */
export async function listParts(
	bucket: R2Bucket,
	tenant: string,
	from: string,
	to: string,
	after: string | null,
	max: number,
): Promise<{ parts: ArchivePart[]; next: string | null }> {
	const prefix = `tenant=${tenant}/`;
	const parts: ArchivePart[] = [];
	// Keys sort by date, so the listing starts at `from` and stops past `to`.
	let startAfter = after ?? `${prefix}date=${from}`;
	let more = true;
	while (more && parts.length < max) {
		const listed = await bucket.list({ prefix, startAfter, limit: max - parts.length });
		for (const object of listed.objects) {
			const [, date, part] = /^tenant=[^/]+\/date=([^/]+)\/(.+)$/.exec(object.key) ?? [];
			if (date === undefined || part === undefined) continue;
			if (date > to) {
				more = false;
				break;
			}
			parts.push({ key: object.key, date, part, bytes: object.size, uploaded: object.uploaded.toISOString() });
			startAfter = object.key;
		}
		if (!listed.truncated) more = false;
	}
	return { parts, next: more && parts.length === max ? startAfter : null };
}
