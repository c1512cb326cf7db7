// Live mode: the page reloads its analytics every 5 s (not while a load runs or the tab is hidden)
// and shows the events of the last full minute and of this one, narrowed by the page's filters.
import { $, h, iso } from "./dom.js";
import { formatCount } from "./format.js";
import { filterParams, state, timeseries } from "./state.js";

const LIVE_MS = 5_000;
const MINUTE = 60_000;

export async function loadLiveCount(generation) {
	const minute = Math.floor(Date.now() / MINUTE) * MINUTE;
	const answer = await timeseries({
		metric: "count",
		interval: "minute",
		from: iso(minute - MINUTE),
		to: iso(minute + MINUTE),
		...filterParams(),
	});
	if (generation !== state.generation) return;
	const points = answer.series[0]?.points ?? [];
	const last = points.find((p) => Date.parse(p.start) === minute - MINUTE)?.value ?? 0;
	const current = points.find((p) => Date.parse(p.start) === minute)?.value ?? 0;
	const status = $("live-status");
	status.dataset.minute = iso(minute);
	status.replaceChildren(
		h("span", { class: "live-dot on", "aria-hidden": "true" }),
		h("strong", { "data-testid": "live-last-minute" }, formatCount(last)),
		" events in the last full minute · ",
		h("strong", { "data-testid": "live-this-minute" }, formatCount(current)),
		" so far this minute",
	);
	status.hidden = false;
}

/** Starts live mode; `reload` loads the page's analytics (not billing). */
export function startLive(reload) {
	state.live = true;
	$("live-toggle").setAttribute("aria-pressed", "true");
	state.timer = setInterval(() => {
		if (!state.busy && !document.hidden) reload();
	}, LIVE_MS);
	reload();
}

export function stopLive() {
	state.live = false;
	clearInterval(state.timer);
	state.timer = null;
	$("live-toggle").setAttribute("aria-pressed", "false");
	$("live-status").hidden = true;
}
