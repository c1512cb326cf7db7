// The public API on this origin, read with the tenant's read key. The key lives in sessionStorage
// only: never in a URL, never logged.

const STORAGE_KEY = "meterline.readKey";

export function storedKey() {
	try {
		return sessionStorage.getItem(STORAGE_KEY);
	} catch {
		return null;
	}
}

export function storeKey(key) {
	sessionStorage.setItem(STORAGE_KEY, key);
}

export function forgetKey() {
	sessionStorage.removeItem(STORAGE_KEY);
}

/** Why a read failed: "auth" (401/403), "network" (no answer), or "http" (any other status). */
export class ApiFailure extends Error {
	constructor(kind, message, status = null) {
		super(message);
		this.kind = kind;
		this.status = status;
	}
}

export const AUTH_MESSAGE = "That key was not accepted (wrong key, or a write key: paste the read key)";

export function networkMessage() {
	return `Cannot reach the Meterline API at ${location.origin}`;
}

/** Builds `/path?k=v` from params, leaving out null and undefined values. */
export function apiPath(path, params = {}) {
	const search = new URLSearchParams();
	for (const [name, value] of Object.entries(params)) if (value !== null && value !== undefined) search.set(name, String(value));
	const query = search.toString();
	return query === "" ? path : `${path}?${query}`;
}

/**
 * GETs a JSON answer. `accept` lists statuses whose body is an answer, not an error (/v1/health
 * answers 503 with its report when critical). `auth: false` sends no key.
 */
export async function getJson(path, { auth = true, accept = [200], signal } = {}) {
	const headers = { accept: "application/json" };
	if (auth) {
		const key = storedKey();
		if (!key) throw new ApiFailure("auth", AUTH_MESSAGE);
		headers.authorization = `Bearer ${key}`;
	}
	let response;
	try {
		response = await fetch(path, { headers, signal, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
	} catch (err) {
		if (err && err.name === "AbortError") throw err;
		throw new ApiFailure("network", networkMessage());
	}
	if (response.status === 401 || response.status === 403) throw new ApiFailure("auth", AUTH_MESSAGE, response.status);
	let body = null;
	try {
		body = await response.json();
	} catch {
		body = null;
	}
	if (!accept.includes(response.status)) {
		const message = body && body.error && typeof body.error.message === "string" ? body.error.message : response.statusText;
		throw new ApiFailure("http", `The API answered ${response.status} for ${path.split("?")[0]}: ${message}`, response.status);
	}
	return body;
}
