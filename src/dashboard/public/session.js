// The read key: the connect form that takes it, "Forget key", the error banner, and which view is
// shown (the key form or the dashboard). The key lives in sessionStorage only (api.js).
import { AUTH_MESSAGE, forgetKey, storeKey } from "./api.js";
import { $, byTestId } from "./dom.js";
import { stopLive } from "./live.js";
import { state } from "./state.js";

export function showBanner(message) {
	const banner = $("error-banner");
	banner.textContent = message;
	banner.hidden = false;
}

export function hideBanner() {
	$("error-banner").hidden = true;
	$("error-banner").textContent = "";
}

export function showConnect() {
	stopLive();
	$("dashboard").hidden = true;
	$("connect").hidden = false;
	$("forget-key").hidden = true;
	byTestId("tenant").hidden = true;
	$("key-input").focus();
}

export function showDashboard() {
	$("connect").hidden = true;
	$("dashboard").hidden = false;
	$("forget-key").hidden = false;
}

/** A key the API refused (401/403): forgotten, and the key form shown with why. */
export function rejectKey() {
	forgetKey();
	state.generation++;
	$("dashboard").dataset.state = "error";
	showConnect();
	showBanner(AUTH_MESSAGE);
}

/** Wires the key form and "Forget key"; `load` loads the whole page once a key is stored. */
export function wireKeyForm(load) {
	$("key-form").addEventListener("submit", (e) => {
		e.preventDefault();
		const input = $("key-input");
		const key = input.value.trim();
		if (key === "") {
			input.focus();
			return;
		}
		storeKey(key);
		input.value = "";
		hideBanner();
		showDashboard();
		load();
	});
	$("forget-key").addEventListener("click", () => {
		forgetKey();
		state.generation++;
		hideBanner();
		showConnect();
	});
}
