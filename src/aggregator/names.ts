// The tenant's distinct event names, SKUs and routes, capped: each new one creates rollup rows
// every minute or hour it is used, so a write key sending random names could otherwise grow D1
// without bound. Names are registered once, here; a new event name or SKU past its cap is
// refused, and a new route past its cap is recorded as "(other)" (the event still counts).
import type { QueuedEvent } from "../event/model.js";
import type { Store } from "./state.js";

export type NameKind = "event" | "sku" | "route";
const KINDS: readonly NameKind[] = ["event", "sku", "route"];
/** The kinds a request is refused for; routes past their cap fold into "(other)" instead. */
const REFUSING: readonly NameKind[] = ["event", "sku"];

export type NameCaps = Record<NameKind, number>;

/** A SKU is capped as its (sku, unit) pair: every pair is its own usage row per hour. */
export function skuName(usage: { sku: string; unit: string }): string {
	return JSON.stringify([usage.sku, usage.unit]);
}

export interface Admission {
	/** Names that may be used: known ones, and new ones registered within the cap. */
	admitted: Record<NameKind, Set<string>>;
	/** Names registered by this call, to be remembered once its transaction has committed. */
	added: { kind: NameKind; name: string }[];
}

export class NameRegistry {
	private known: Record<NameKind, Set<string>> | null = null;

	constructor(
		private readonly store: Store,
		private readonly caps: NameCaps,
	) {}

	/**
	 * Admits names, registering new ones while the cap allows; with `allOrNothing`, none of them
	 * unless all fit (a request refused whole must not take cap slots). Call inside a transaction;
	 * then `commit`.
	 */
	admit(names: Partial<Record<NameKind, Iterable<string>>>, allOrNothing = false): Admission {
		const known = this.load();
		const admission: Admission = { admitted: { event: new Set(), sku: new Set(), route: new Set() }, added: [] };
		const fits = () =>
			REFUSING.every(
				(kind) =>
					known[kind].size + new Set([...(names[kind] ?? [])].filter((name) => !known[kind].has(name))).size <= this.caps[kind],
			);
		if (allOrNothing && !fits()) {
			for (const kind of KINDS) for (const name of names[kind] ?? []) if (known[kind].has(name)) admission.admitted[kind].add(name);
			return admission;
		}
		for (const kind of KINDS) {
			let count = known[kind].size;
			for (const name of names[kind] ?? []) {
				if (known[kind].has(name) || admission.admitted[kind].has(name)) admission.admitted[kind].add(name);
				else if (count < this.caps[kind]) {
					this.store.exec("INSERT INTO names (kind, name) VALUES (?, ?)", kind, name);
					admission.admitted[kind].add(name);
					admission.added.push({ kind, name });
					count++;
				}
			}
		}
		return admission;
	}

	commit(admission: Admission): void {
		const known = this.load();
		for (const { kind, name } of admission.added) known[kind].add(name);
	}

	/** Forgets what memory holds, after a transaction that registered names rolled back. */
	reset(): void {
		this.known = null;
	}

	/** Whether an event's name and SKU are admitted. */
	static allows(admission: Admission, event: QueuedEvent): boolean {
		return admission.admitted.event.has(event.event) && (!event.usage || admission.admitted.sku.has(skuName(event.usage)));
	}

	private load(): Record<NameKind, Set<string>> {
		if (!this.known) {
			this.known = { event: new Set(), sku: new Set(), route: new Set() };
			for (const { kind, name } of this.store.rows<{ kind: NameKind; name: string }>("SELECT kind, name FROM names"))
				this.known[kind].add(name);
		}
		return this.known;
	}
}

/**
 * Admits names for the producer, in its own transaction (see TenantAggregator.admitNames), and
 * returns those that may be used. `check` is the tenant check; memory follows storage.
 */
export function admitForProducer(
	store: Store,
	registry: NameRegistry,
	names: Partial<Record<NameKind, string[]>>,
	allOrNothing: boolean,
	check: () => void,
): Record<NameKind, string[]> {
	let admission;
	try {
		admission = store.transact(
			() => {
				check();
				return registry.admit(names, allOrNothing);
			},
			{ rpc_calls: 1 },
		);
	} catch (err) {
		registry.reset();
		throw err;
	}
	registry.commit(admission);
	return { event: [...admission.admitted.event], sku: [...admission.admitted.sku], route: [...admission.admitted.route] };
}
