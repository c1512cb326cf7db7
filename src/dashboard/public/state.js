// The page's state (range, interval, filters, live mode, load generation) and what follows from it:
// the range to read and the query parameters every analytics read is narrowed by.
import { apiPath, getJson } from "./api.js";
import { alignRange, customIntervals, PRESETS, presetRange } from "./ranges.js";

export const BREAKDOWNS = ["event", "route", "status", "country"];
/** The dimensions /v1/query/timeseries filters by, one at a time, besides the event. */
export const DIMENSIONS = ["route", "status", "country"];

export const state = {
	preset: "24h",
	interval: "hour",
	custom: null,
	/** The event every analytics read is narrowed to, or null. */
	event: null,
	/** The route, status or country every analytics read is narrowed to ({kind, value}; value null: none), or null. */
	dimension: null,
	live: false,
	timer: null,
	generation: 0,
	loads: 0,
	busy: false,
	lastRange: null,
};

export const capitalized = (word) => word[0].toUpperCase() + word.slice(1);

/** How a breakdown value is shown: null is an event without one. */
export function keyLabel(breakdown, key) {
	if (key !== null) return key;
	return breakdown === "country" ? "Unknown" : "(none)";
}

/**
 * The query parameters of the filters: `event=` and one of `route=`, `status=`, `country=`
 * (`none` selects the events without one). `withEvent: false` leaves the event out.
 */
export function filterParams({ withEvent = true, withDimension = true } = {}) {
	const params = {};
	if (withEvent && state.event !== null) params.event = state.event;
	if (withDimension && state.dimension) params[state.dimension.kind] = state.dimension.value ?? "none";
	return params;
}

export const isFiltered = () => state.event !== null || state.dimension !== null;

/** Whether a top-N row is the selected filter. */
export function isSelected(breakdown, key) {
	if (breakdown === "event") return state.event !== null && state.event === key;
	return state.dimension !== null && state.dimension.kind === breakdown && state.dimension.value === key;
}

export function currentRange() {
	if (state.preset === "custom" && state.custom) return alignRange(state.custom.from, state.custom.to, state.interval);
	return presetRange(state.preset, state.interval, Date.now());
}

export function intervalOptions() {
	if (state.preset !== "custom") return PRESETS[state.preset].intervals;
	if (!state.custom) return ["hour"];
	return customIntervals(state.custom.from, state.custom.to, Date.now());
}

export function previousLabel() {
	return state.preset === "custom" ? "the period before" : PRESETS[state.preset].previous;
}

export function timeseries(params) {
	return getJson(apiPath("/v1/query/timeseries", params));
}
