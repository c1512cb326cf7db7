// Pipeline health: /v1/health (all tenants, no key) beside this tenant's own counters from
// /v1/metrics.
import { getJson } from "./api.js";
import { $, h, section } from "./dom.js";
import { DASH, formatAge, formatCount } from "./format.js";
import { state } from "./state.js";

export async function loadHealth(metrics, generation) {
	const container = $("health-body");
	await section(container, async () => {
		const health = await getJson("/v1/health", { auth: false, accept: [200, 503] });
		if (generation === state.generation) renderHealth(health, metrics);
	});
}

function item(label, value, testId, tone = null, hint = null) {
	return h(
		"div",
		{ class: `health-item${tone ? ` tone-${tone}` : ""}` },
		h("dt", {}, label),
		h("dd", { "data-testid": testId, title: hint }, value),
	);
}

function renderHealth(health, metrics) {
	const c = health.checks;
	const count = (n) => (n === null || n === undefined ? DASH : formatCount(n));
	const warn = (n) => (n ? "warn" : null);
	const oldest = metrics.oldestUnflushedAgeMs;
	$("health-body").replaceChildren(
		h(
			"div",
			{ class: "health-head" },
			h("span", { class: `pill pill-${health.status}`, "data-testid": "health-status" }, health.status),
			h(
				"p",
				{ class: "muted small" },
				{
					healthy: "Everything flows.",
					degraded: "A flush is being retried, or dead letters or spills arrived in the last hour.",
					critical: "Flushes have failed for over 5 minutes, the queue is refusing events, or D1 is unreachable.",
				}[health.status] ?? "",
			),
		),
		h(
			"dl",
			{ class: "health-grid" },
			item("D1", c.d1.ok ? "reachable" : "unreachable", "health-d1", c.d1.ok ? null : "bad"),
			item("Tenants retrying flushes", count(c.flushes.retryingTenants), "health-retrying", warn(c.flushes.retryingTenants)),
			item(
				"Dead letters, last hour (all tenants)",
				count(c.deadLetters.lastHour),
				"health-dead-letters",
				warn(c.deadLetters.lastHour),
			),
			item("Spilled events, last hour (all tenants)", count(c.spills.lastHour), "health-spills", warn(c.spills.lastHour)),
			item("Your dead letters", count(metrics.deadLettered), "metric-dead-letters", warn(metrics.deadLettered - metrics.replayed)),
			item("Your spilled events", count(metrics.spilled), "metric-spilled", warn(metrics.spillPending)),
			item("Waiting to re-enqueue", count(metrics.spillPending), "metric-spill-pending", warn(metrics.spillPending)),
			item(
				"Oldest unflushed delta",
				oldest === null ? "nothing pending" : formatAge(oldest),
				"metric-oldest-unflushed",
				oldest !== null && oldest > 60_000 ? "warn" : null,
				"How long the oldest count the aggregator holds has waited for its flush to D1",
			),
			item("Events received", count(metrics.received), "metric-received"),
			item("Events aggregated", count(metrics.aggregated), "metric-aggregated"),
			item("Flush failures", count(metrics.flushFailures), "metric-flush-failures", warn(metrics.flushFailures)),
			item("Quarantined rows", count(metrics.quarantinedRows), "metric-quarantined", warn(metrics.quarantinedRows)),
		),
	);
}
