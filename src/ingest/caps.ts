// The tenant's caps on distinct event names and SKUs, checked before the producer answers: names
// this isolate has seen admitted pass at once; new ones are registered by the tenant's aggregator,
// which refuses any past the cap, so the caller gets a 400 instead of an event that is never counted.
import { skuName } from "../aggregator/names.js";
import type { QueuedEvent } from "../event/model.js";
import type { FieldIssue } from "../shared/errors.js";

/** Names known to be admitted, per tenant, in this isolate (a tenant's names never stop being admitted). */
const admitted = new Map<string, { event: Set<string>; sku: Set<string> }>();
const MAX_TENANTS = 1000;

/**
 * One issue (with the event's index) per event whose name or SKU the tenant may not add; with
 * `allOrNothing` no new name is registered unless every one fits. If the aggregator cannot be
 * asked, nothing is refused here: it checks again when the events arrive.
 */
export async function capIssues(env: Env, tenant: string, events: QueuedEvent[], allOrNothing: boolean): Promise<FieldIssue[]> {
	let known = admitted.get(tenant);
	if (!known) {
		if (admitted.size >= MAX_TENANTS) admitted.delete(admitted.keys().next().value!);
		admitted.set(tenant, (known = { event: new Set(), sku: new Set() }));
	}
	const unknown = { event: new Set<string>(), sku: new Set<string>() };
	for (const event of events) {
		if (!known.event.has(event.event)) unknown.event.add(event.event);
		if (event.usage && !known.sku.has(skuName(event.usage))) unknown.sku.add(skuName(event.usage));
	}
	if (unknown.event.size === 0 && unknown.sku.size === 0) return [];
	let answer: { event: string[]; sku: string[] };
	try {
		answer = await env.AGGREGATOR.getByName(tenant).admitNames(
			tenant,
			{ event: [...unknown.event], sku: [...unknown.sku] },
			allOrNothing,
		);
	} catch (err) {
		console.error("could not check the tenant's name caps; the aggregator checks them on arrival", { tenant }, err);
		return [];
	}
	for (const name of answer.event) known.event.add(name);
	for (const name of answer.sku) known.sku.add(name);
	const issues: FieldIssue[] = [];
	events.forEach((event, index) => {
		if (!known.event.has(event.event)) {
			issues.push({
				index,
				path: "event",
				message: `is a new event name, and the tenant already has ${env.MAX_EVENT_NAMES ?? 1000} (the cap)`,
			});
		}
		if (event.usage && !known.sku.has(skuName(event.usage))) {
			issues.push({
				index,
				path: "usage.sku",
				message: `is a new (sku, unit) pair, and the tenant already has ${env.MAX_SKUS ?? 1000} (the cap)`,
			});
		}
	});
	return issues;
}
