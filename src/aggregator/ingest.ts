// One tenant's slice of a queue batch into the aggregator, in one SQLite transaction: events older
// than the dedupe window and new names past the caps are refused, known ids dropped, the rest
// remembered and folded into the open deltas, with the counters.
import { DEDUPE_WINDOW_MS, type QueuedEvent } from "../event/model.js";
import { archiveSettings, keepForArchive } from "./archive.js";
import { hourOf } from "./dedupe.js";
import { addToOpen, fold } from "./fold.js";
import { OTHER } from "./meter-groups.js";
import { NameRegistry, skuName } from "./names.js";
import { nameCaps, type Parts } from "./parts.js";

export interface RefusedEvent {
	id: string;
	reason: string;
}

export interface IngestResult {
	accepted: number;
	duplicates: number;
	/** Events not counted, with why: the consumer dead-letters them, so none is lost silently. */
	refused: RefusedEvent[];
	/**
	 * Messages of a JSON slice that failed the guard (by index, with the problem), none of their
	 * events counted: the consumer dead-letters each whole. Absent when there are none.
	 */
	poison?: { index: number; problem: string }[];
}

export const REFUSED_EXPIRED = "expired: the timestamp is older than the dedupe window, so a copy of it may already have been counted";

function cappedReason(env: Env): string {
	const caps = nameCaps(env);
	return `capped: a new event name or SKU would pass the tenant's cap (${caps.event} event names, ${caps.sku} SKUs)`;
}

/**
 * Counts a slice, durably, and returns what happened. `claim` runs first inside the transaction
 * (the tenant check). Memory (the id index, the known names) follows only once storage has
 * committed; if anything throws, both are as they were. `json`, when given, is `events` as JSON
 * arrays (one per queue message): the archive keeps them as they are when every event is new (the
 * usual case).
 */
export function ingestSlice(
	p: Parts,
	tenant: string,
	events: QueuedEvent[],
	now: number,
	claim: (tenant: string) => void,
	json?: readonly string[],
): IngestResult {
	const refused: RefusedEvent[] = [];
	const inWindow = events.filter((event) => {
		if (event.timestamp >= now - DEDUPE_WINDOW_MS) return true;
		if (!refused.some((r) => r.id === event.id)) refused.push({ id: event.id, reason: REFUSED_EXPIRED });
		return false;
	});
	const fresh = p.ids.fresh(inWindow, hourOf(now - DEDUPE_WINDOW_MS));
	const names = {
		event: fresh.map((event) => event.event),
		sku: fresh.flatMap((event) => (event.usage ? [skuName(event.usage)] : [])),
		route: fresh.flatMap((event) => (event.route === undefined ? [] : [event.route])),
	};
	let outcome;
	try {
		outcome = p.store.transact(
			(state) => {
				claim(tenant);
				const admission = p.names.admit(names);
				const admitted = fresh.filter((event) => NameRegistry.allows(admission, event));
				for (const event of fresh)
					if (!NameRegistry.allows(admission, event)) refused.push({ id: event.id, reason: cappedReason(p.env) });
				const chunks = p.ids.remember(admitted, () => state.nextChunk++);
				let routeOther = 0;
				const { folded, meterSkipped, meterOther } = fold(admitted, {
					closed: p.closed,
					now,
					meters: p.meters.active(),
					groups: p.meterGroups,
					routeOf: (event) => {
						if (event.route === undefined) return "";
						if (admission.admitted.route.has(event.route)) return event.route;
						routeOther++;
						return OTHER;
					},
				});
				addToOpen(p.store, folded);
				if (archiveSettings(p.env).enabled)
					keepForArchive(p.store, admitted, now, admitted.length === events.length ? json : undefined);
				p.meterGroups.save();
				const duplicates = inWindow.length - fresh.length;
				const counters = state.counters;
				counters.consumed += events.length;
				counters.duplicates += duplicates;
				counters.aggregated += admitted.length;
				counters.expired += events.length - inWindow.length;
				counters.capped += fresh.length - admitted.length;
				counters.meter_skipped += meterSkipped;
				counters.meter_other += meterOther;
				counters.route_other += routeOther;
				if (admitted.length > 0 && state.openSince === null) state.openSince = now;
				return { admission, chunks, result: { accepted: admitted.length, duplicates, refused } };
			},
			{ rpc_calls: 1 },
		);
	} catch (err) {
		p.names.reset();
		p.meterGroups.reset();
		throw err;
	}
	p.ids.indexed(outcome.chunks);
	p.names.commit(outcome.admission);
	return outcome.result;
}
