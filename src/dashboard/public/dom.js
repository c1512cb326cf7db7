// DOM helpers shared by the dashboard's modules. Everything the API returns is put on the page as
// text (textContent or text nodes), never as HTML.
import { ApiFailure } from "./api.js";

export const $ = (id) => document.getElementById(id);
export const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
export const iso = (ms) => new Date(ms).toISOString();

/** A DOM element with attributes and children (strings become text nodes). */
export function h(tag, attrs = {}, ...children) {
	const node = document.createElement(tag);
	for (const [name, value] of Object.entries(attrs)) {
		if (value === null || value === undefined || value === false) continue;
		if (name === "class") node.className = value;
		else if (name === "text") node.textContent = value;
		else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
		else node.setAttribute(name, value === true ? "" : String(value));
	}
	for (const child of children.flat()) {
		if (child === null || child === undefined || child === false) continue;
		node.append(typeof child === "string" ? document.createTextNode(child) : child);
	}
	return node;
}

/** Runs a section's load; an API error other than a bad key or no network is shown in the section. */
export async function section(container, load) {
	try {
		await load();
	} catch (err) {
		if (err instanceof ApiFailure && err.kind === "http") {
			container.replaceChildren(h("p", { class: "section-error", "data-testid": "section-error", role: "status" }, err.message));
			return;
		}
		throw err;
	}
}

export const sum = (points) => points.reduce((n, p) => n + (p.value ?? 0), 0);
