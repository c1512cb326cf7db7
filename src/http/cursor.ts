// Paging cursors: the last value of the previous page, opaque to the caller.
import { invalidField } from "../shared/errors.js";

/** A cursor is the last customer of the previous page, opaque to the caller (base64url of its JSON). */
export function encodeCursor(customer: string): string {
	const bytes = new TextEncoder().encode(JSON.stringify(customer));
	return btoa(String.fromCharCode(...bytes))
		.replace(/\+/g, "-")
		.replace(/\//g, "_")
		.replace(/=+$/, "");
}

export function decodeCursor(cursor: string): string {
	try {
		const binary = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
		const value: unknown = JSON.parse(
			new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))),
		);
		if (typeof value === "string") return value;
	} catch {
		// Falls through to the 400.
	}
	throw invalidField("cursor", "must be a nextCursor from a previous page");
}

/** A page's `limit` parameter: an integer 1-max, or the default when absent. */
export function parseLimit(text: string | null, page: { readonly default: number; readonly max: number }): number {
	if (text === null) return page.default;
	const limit = Number(text);
	if (!/^\d{1,7}$/.test(text) || limit < 1 || limit > page.max) throw invalidField("limit", `must be an integer 1-${page.max}`);
	return limit;
}
