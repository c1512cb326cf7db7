// The outbox of accepted events: every event an ingest admits (new, deduplicated) is kept as one
// JSON row per ingest, then the alarm seals a range of rows, writes it to R2 as one Parquet part per
// date, hands it to the forwarding queue, and clears the rows. The range is sealed before anything
// is written, so a retry writes the very same parts to the very same keys (an event lands in
// exactly one file, however often it runs), and resends the same events for forwarding, which
// providers deduplicate by the event id.
import type { EventsMessage, QueuedEvent } from "../event/model.js";
import { enqueueEvents } from "../event/pack.js";
import { byDate, parquetOf, partKey, type ArchivedEvent } from "../sinks/archive.js";
import { hasDestinations } from "../sinks/d1/destinations.js";
import { TtlCache } from "../shared/ttl-cache.js";
import type { Parts } from "./parts.js";
import { positive } from "./parts.js";
import { backOff, recovered, type Store } from "./state.js";

/** JSON characters per archive row (SQLite's row limit is 2 MB) and per part (a few MB of JSON, less as Parquet). */
const ROW_CHARS = 1_000_000;
const PART_CHARS = 4_000_000;

/** The forwarding queue, when this deployment forwards (its binding is optional). */
function forwardQueue(env: Env): Queue<EventsMessage> | undefined {
	return (env as Env & { FORWARD?: Queue<EventsMessage> }).FORWARD;
}

/**
 * How long an aggregator trusts D1's answer to whether its tenant has a destination, as the
 * forward consumer trusts its list (DESTINATIONS_CACHE_MS); creating or deleting one tells the
 * aggregator at once (destinationsChanged).
 */
const DESTINATIONS_KNOWN_MS = 30_000;
const forwarding = new TtlCache<boolean>(DESTINATIONS_KNOWN_MS);

/**
 * Whether this range goes to the forwarding queue: only while the tenant has a destination, since
 * the forward consumer would read every event to deliver it nowhere. When D1 cannot tell, the
 * range is sent anyway and the consumer decides.
 */
async function forwardsNow(env: Env, tenant: string, now: number): Promise<boolean> {
	const known = forwarding.get(tenant, now);
	if (known !== undefined) return known;
	try {
		const found = await hasDestinations(env.DB, tenant);
		forwarding.set(tenant, found, now);
		return found;
	} catch (err) {
		console.error("could not tell whether the tenant has destinations; forwarding anyway", { tenant }, err);
		return true;
	}
}

/** Forgets what this isolate knows of the tenant's destinations (one was created or deleted). */
export function forgetForwarding(tenant: string): void {
	forwarding.delete(tenant);
}

/**
 * Whether accepted events are kept at all (an archive bucket or a forwarding queue is bound, and
 * ARCHIVE_INTERVAL_MS is not "0", which turns both off), and for how long at most.
 */
export function archiveSettings(env: Env): { enabled: boolean; intervalMs: number } {
	const bound = env.ARCHIVE !== undefined || forwardQueue(env) !== undefined;
	return { enabled: bound && env.ARCHIVE_INTERVAL_MS !== "0", intervalMs: positive(env.ARCHIVE_INTERVAL_MS, 60_000) };
}

/**
 * Keeps `events` for the archive, in rows of at most ROW_CHARS; call inside the ingest's
 * transaction. `json`, when given, is exactly these events as JSON arrays (what the consumer sent,
 * one per queue message, each far below a row): rows are joined from them, nothing is serialized
 * again. Otherwise the events are serialized whole, once, and event by event only when they must
 * be split.
 */
export function keepForArchive(store: Store, events: readonly QueuedEvent[], now: number, json?: readonly string[]): void {
	if (events.length === 0) return;
	let parts: readonly string[];
	if (json !== undefined) parts = json.map((array) => array.slice(1, -1));
	else {
		const whole = JSON.stringify(events);
		parts = whole.length <= ROW_CHARS ? [whole.slice(1, -1)] : events.map((event) => JSON.stringify(event));
	}
	let chunk: string[] = [];
	let chars = 0;
	const write = () => {
		if (chunk.length === 0) return;
		store.exec("INSERT INTO pending_archive (events, chars, at) VALUES (?, ?, ?)", `[${chunk.join(",")}]`, chars, now);
		chunk = [];
		chars = 0;
	};
	for (const part of parts) {
		// An empty array's part is empty: it adds no event (and no comma).
		if (part.length === 0) continue;
		if (chars + part.length > ROW_CHARS) write();
		chunk.push(part);
		chars += part.length + 1;
	}
	write();
}

export interface ArchiveBacklog {
	rows: number;
	chars: number;
	/** When the oldest row was kept, or null. */
	oldestAt: number | null;
}

export function archiveBacklog(store: Store): ArchiveBacklog {
	const row = store.rows<{ rows: number; chars: number | null; oldest: number | null }>(
		"SELECT count(*) AS rows, sum(chars) AS chars, min(at) AS oldest FROM pending_archive",
	)[0]!;
	return { rows: row.rows, chars: row.chars ?? 0, oldestAt: row.oldest };
}

/** When the archive is next due: a sealed range or a full part now, else the oldest row's interval. */
export function archiveDueAt(p: Parts, now: number): number | null {
	const { enabled, intervalMs } = archiveSettings(p.env);
	if (!enabled) return null;
	const retryAt = p.store.state.retries.archive.retryAt;
	if (p.store.state.archiveSealed !== null) return Math.max(now, retryAt);
	const backlog = archiveBacklog(p.store);
	if (backlog.oldestAt === null) return null;
	return Math.max(backlog.chars >= PART_CHARS ? now : backlog.oldestAt + intervalMs, retryAt);
}

/**
 * Writes the sealed range (sealing one first when a part is due) to R2 and clears it. A failure
 * leaves the range sealed for the next alarm after a backoff; it never touches the D1 flush.
 */
export async function archiveOnce(p: Parts, now: number): Promise<number> {
	const due = archiveDueAt(p, now);
	if (due === null || due > now) return 0;
	const store = p.store;
	if (store.state.archiveSealed === null) seal(store);
	const sealed = store.state.archiveSealed!;
	const rows = store.rows<{ seq: number; events: string; at: number }>(
		"SELECT seq, events, at FROM pending_archive WHERE seq BETWEEN ? AND ? ORDER BY seq",
		sealed.first,
		sealed.last,
	);
	// Each row's events are fresh objects from its JSON, so they take their receive time in place.
	const events: ArchivedEvent[] = [];
	for (const row of rows) {
		for (const event of JSON.parse(row.events) as ArchivedEvent[]) {
			event.receivedAt = row.at;
			events.push(event);
		}
	}
	try {
		if (p.env.ARCHIVE !== undefined) {
			for (const [date, list] of byDate(events)) {
				await p.sinks.archive(partKey(store.state.tenant!, date, store.state.incarnation!, sealed), parquetOf(list));
			}
		}
		const forward = forwardQueue(p.env);
		if (forward !== undefined && events.length > 0 && (await forwardsNow(p.env, store.state.tenant!, now)))
			await enqueueEvents(forward, store.state.tenant!, events.map(withoutReceivedAt));
	} catch (err) {
		console.error("archiving or forwarding failed; the range stays sealed and is retried", err);
		store.transact((s) => backOff(s, "archive", now));
		return 0;
	}
	store.transact((s) => {
		store.exec("DELETE FROM pending_archive WHERE seq BETWEEN ? AND ?", sealed.first, sealed.last);
		s.archiveSealed = null;
		s.counters.archived += events.length;
		recovered(s, "archive");
	});
	return events.length;
}

/** Seals the oldest rows, up to PART_CHARS of them (at least one). */
function seal(store: Store): void {
	const rows = store.rows<{ seq: number; chars: number }>("SELECT seq, chars FROM pending_archive ORDER BY seq");
	let last = rows[0]!.seq;
	let chars = 0;
	for (const row of rows) {
		if (chars > 0 && chars + row.chars > PART_CHARS) break;
		chars += row.chars;
		last = row.seq;
	}
	store.transact((s) => {
		s.archiveSealed = { first: rows[0]!.seq, last, part: s.nextArchivePart++ };
	});
}

function withoutReceivedAt({ receivedAt: _, ...event }: ArchivedEvent): QueuedEvent {
	return event;
}
