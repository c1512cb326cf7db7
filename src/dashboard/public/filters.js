// The page's filters: one event and one route, status or country at most (what
// /v1/query/timeseries combines), chosen from the top-10 tables and shown as chips with ✕.
import { $ } from "./dom.js";
import { DIMENSIONS, isSelected, keyLabel, state } from "./state.js";

let reload = () => {};

/** Toggles the filter of a top-10 row: a selected row clears it, another replaces it. */
export function select(breakdown, key) {
	const on = !isSelected(breakdown, key);
	if (breakdown === "event") state.event = on ? key : null;
	else if (DIMENSIONS.includes(breakdown)) state.dimension = on ? { kind: breakdown, value: key } : null;
	renderChips();
	reload();
}

export function renderChips() {
	$("filter-chip").hidden = state.event === null;
	if (state.event !== null) $("filter-chip-text").textContent = `filter: event = ${state.event}`;
	$("dimension-chip").hidden = state.dimension === null;
	if (state.dimension) {
		const { kind, value } = state.dimension;
		$("dimension-chip-text").textContent = `filter: ${kind} = ${keyLabel(kind, value)}`;
		$("dimension-clear").setAttribute("aria-label", `Clear the ${kind} filter`);
	}
}

/** Wires the chips' ✕ buttons; `load` reloads the page's analytics after a filter change. */
export function wireFilters(load) {
	reload = load;
	$("filter-clear").addEventListener("click", () => {
		state.event = null;
		renderChips();
		reload();
	});
	$("dimension-clear").addEventListener("click", () => {
		state.dimension = null;
		renderChips();
		reload();
	});
	renderChips();
}
