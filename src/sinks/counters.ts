// The producer's counters: kept in this isolate's memory on the hot path and added to D1 at most
// every METRICS_REPORT_MS, so counting costs no request a D1 write. Deltas an isolate holds when
// it is evicted are lost: these counters are for operations, never for billing.
import { addProducerMetrics, type ProducerCounter } from "./d1/metrics.js";

const pending = new Map<string, Map<ProducerCounter, number>>();
let lastReport = 0;

export function countProducer(tenant: string, name: ProducerCounter, value: number): void {
	if (value === 0) return;
	let counters = pending.get(tenant);
	if (!counters) pending.set(tenant, (counters = new Map()));
	counters.set(name, (counters.get(name) ?? 0) + value);
}

/** Adds the pending deltas to D1 if the report interval has passed. Call inside waitUntil. */
export async function reportProducerCounters(env: Env, now = Date.now()): Promise<void> {
	const interval = Number(env.METRICS_REPORT_MS ?? 10_000);
	if (pending.size === 0 || now - lastReport < interval) return;
	lastReport = now;
	const deltas = [...pending].flatMap(([tenant, counters]) => [...counters].map(([name, value]) => ({ tenant, name, value })));
	pending.clear();
	try {
		await addProducerMetrics(env.DB, deltas);
	} catch (err) {
		console.error("producer counters not reported; kept for the next report", err);
		for (const { tenant, name, value } of deltas) countProducer(tenant, name, value);
	}
}
