// Telling the health monitor when this tenant's flushes start failing (and each further failure)
// and when they recover. The state remembers what the monitor acknowledged, so a report that does
// not get through is retried from the alarm, and health never sticks at a state that has passed.
import { HEALTH_MONITOR } from "../sinks/health-monitor.js";
import type { Parts } from "./parts.js";
import { backOff, recovered, type AggregatorState } from "./state.js";

/** The flush health the monitor should know of. */
function truth(state: AggregatorState): "healthy" | "failing" {
	return state.failingSince === null ? "healthy" : "failing";
}

/** Whether the monitor has yet to hear the current flush health. */
export function healthReportPending(state: AggregatorState): boolean {
	return truth(state) !== state.healthReported;
}

/** Reports the flush health if the monitor does not know it yet (or always, with `force`). */
export async function reportHealth(p: Parts, now: number, force = false): Promise<void> {
	const state = p.store.state;
	const current = truth(state);
	if (!force && current === state.healthReported) return;
	try {
		const monitor = p.env.HEALTH.getByName(HEALTH_MONITOR);
		if (current === "failing") await monitor.flushFailing(state.tenant!, state.failingSince!, state.retries.flush.failures);
		else await monitor.flushRecovered(state.tenant!);
	} catch (err) {
		console.error("health monitor unreachable; the report is retried", err);
		p.store.transact((s) => backOff(s, "health", now));
		return;
	}
	p.store.transact((s) => {
		s.healthReported = current;
		recovered(s, "health");
	});
}
