// Which tenant an aggregator's storage belongs to. An aggregator is named for its tenant, and a call
// for another tenant is a routing bug: it throws rather than mix two tenants' counts.
import type { Store } from "./state.js";

/** Throws unless `tenant` owns this storage (or nothing has claimed it yet). */
export function checkOwner(store: Store, objectName: string | undefined, tenant: string): void {
	const owner = store.state.tenant ?? objectName ?? null;
	if (owner !== null && owner !== tenant) throw new Error(`aggregator for ${owner} was sent events for ${tenant}`);
}

/** Checks the owner, and on the first write claims this storage for the tenant. */
export function claimTenant(store: Store, objectName: string | undefined, tenant: string): void {
	checkOwner(store, objectName, tenant);
	const state = store.state;
	if (state.tenant === null) {
		state.tenant = tenant;
		// Flush ids are unique per storage incarnation, so a wiped aggregator can never collide
		// with the flush ledger an earlier incarnation left in D1.
		state.incarnation = crypto.randomUUID();
	}
}
