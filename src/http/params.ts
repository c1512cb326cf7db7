// Path and query parameters: what a route accepts, and itty-router's still-encoded path params.
import type { IRequest } from "itty-router";
import { invalidField } from "../shared/errors.js";

/** The decoded path parameter, or a 400 naming it when its encoding is broken. */
export function pathParam(request: IRequest, name: string): string {
	try {
		return decodeURIComponent(request.params[name] ?? "");
	} catch {
		throw invalidField(name, "is not valid percent-encoding");
	}
}

/**
 * Refuses query parameters a route does not take, and repeated ones: a tenant or option named in
 * the query must never be silently ignored.
 */
export function onlyQuery(url: URL, allowed: readonly string[]): void {
	const seen = new Set<string>();
	for (const key of url.searchParams.keys()) {
		if (!allowed.includes(key)) throw invalidField(key, "unknown query parameter");
		if (seen.has(key)) throw invalidField(key, "given more than once");
		seen.add(key);
	}
}
