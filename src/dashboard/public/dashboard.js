// The Meterline dashboard: product analytics, usage, invoice previews and pipeline health for one
// tenant, read from this origin's public API with the tenant's read key (kept in sessionStorage).
// This module loads the page and wires its range controls; each section is its own module.
import { ApiFailure, getJson, storedKey } from "./api.js";
import { loadBilling } from "./billing.js";
import { $, byTestId, h, iso } from "./dom.js";
import { select, wireFilters } from "./filters.js";
import { formatRange } from "./format.js";
import { loadHealth } from "./health.js";
import { loadLiveCount, startLive, stopLive } from "./live.js";
import { customIntervals, defaultCustomInterval, PRESETS, toLocalInput } from "./ranges.js";
import { hideBanner, rejectKey, showBanner, showConnect, showDashboard, wireKeyForm } from "./session.js";
import { wireCopyButtons } from "./snippets.js";
import { currentRange, intervalOptions, previousLabel, state } from "./state.js";
import { loadStats } from "./stats.js";
import { loadTops } from "./tables.js";

function renderRangeControls() {
	for (const button of document.querySelectorAll("[data-range]")) {
		button.setAttribute("aria-pressed", String(button.dataset.range === state.preset));
	}
	const select = $("interval-select");
	const options = intervalOptions();
	if (!options.includes(state.interval)) state.interval = options[0];
	select.replaceChildren(...options.map((o) => h("option", { value: o, selected: o === state.interval }, `by ${o}`)));
	select.disabled = options.length < 2;
	$("custom-range").hidden = state.preset !== "custom";
}

function renderRangeLabel(range) {
	const label = $("range-label");
	label.textContent = `${formatRange(range.from, range.to)} · by ${range.interval} · compared with ${previousLabel()}`;
	label.dataset.from = iso(range.from);
	label.dataset.to = iso(range.to);
	label.dataset.interval = range.interval;
	$("p95-hint").textContent = `worst ${range.interval}`;
}

/**
 * Loads every section for the current range and filters. A newer load supersedes an older one
 * (state.generation); data-state and data-loads on #dashboard say when a load has finished.
 */
async function loadAll({ billing = true } = {}) {
	const generation = ++state.generation;
	const dashboard = $("dashboard");
	dashboard.dataset.state = "loading";
	state.busy = true;
	const range = currentRange();
	state.lastRange = range;
	renderRangeLabel(range);
	let failed = null;
	try {
		// One read first: a wrong key answers one 401 instead of one per section.
		const metrics = await getJson("/v1/metrics");
		if (generation !== state.generation) return;
		const tenant = byTestId("tenant");
		tenant.textContent = metrics.tenant;
		tenant.hidden = false;
		const tasks = [loadStats(range, generation), loadTops(range, generation, select), loadHealth(metrics, generation)];
		if (state.live) tasks.push(loadLiveCount(generation));
		if (billing) tasks.push(loadBilling(generation));
		const results = await Promise.allSettled(tasks);
		failed = results.find((r) => r.status === "rejected")?.reason ?? null;
	} catch (err) {
		failed = err;
	} finally {
		if (generation === state.generation) state.busy = false;
	}
	if (generation !== state.generation) return;
	if (failed instanceof ApiFailure && failed.kind === "auth") return rejectKey();
	if (failed) {
		showBanner(failed instanceof ApiFailure ? failed.message : `Something went wrong: ${failed.message}`);
		dashboard.dataset.state = "error";
	} else {
		hideBanner();
		dashboard.dataset.state = "ready";
	}
	dashboard.dataset.loads = String(++state.loads);
}

const loadAnalytics = () => loadAll({ billing: false });

function wireRange() {
	for (const button of document.querySelectorAll("[data-range]")) {
		button.addEventListener("click", () => {
			const preset = button.dataset.range;
			if (preset === "custom") {
				const range = state.lastRange ?? currentRange();
				state.preset = "custom";
				$("custom-from").value = toLocalInput(range.from);
				$("custom-to").value = toLocalInput(range.to);
				renderRangeControls();
				$("custom-from").focus();
				return;
			}
			state.preset = preset;
			state.interval = PRESETS[preset].intervals[0];
			renderRangeControls();
			loadAnalytics();
		});
	}
	$("custom-range").addEventListener("submit", (e) => {
		e.preventDefault();
		const from = new Date($("custom-from").value).getTime();
		const to = new Date($("custom-to").value).getTime();
		if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) {
			showBanner("The custom range needs a start before its end.");
			return;
		}
		state.custom = { from, to };
		state.interval = defaultCustomInterval(customIntervals(from, to, Date.now()), to - from);
		renderRangeControls();
		loadAnalytics();
	});
	$("interval-select").addEventListener("change", (e) => {
		state.interval = e.target.value;
		loadAnalytics();
	});
	$("live-toggle").addEventListener("click", () => (state.live ? stopLive() : startLive(loadAnalytics)));
	$("refresh").addEventListener("click", () => loadAll());
}

wireKeyForm(loadAll);
wireRange();
wireFilters(loadAnalytics);
wireCopyButtons();
renderRangeControls();
if (storedKey()) {
	showDashboard();
	loadAll();
} else {
	showConnect();
}
