// Security test plumbing: exact error assertions, a tenant's extra keys, the admin calls tests
// repeat, a route's name, key hashes, and the builders of hostile POST /v1/events requests.
import { expect } from "vitest";
import type { FieldIssue } from "../../src/shared/errors";
import { ADMIN_TOKEN, call, errorOf, EVENTS_URL, postJson } from "../helpers";

/** A detail as the API reports it; `message` may be a matcher where the spec does not fix it. */
export type Detail = Omit<FieldIssue, "message"> & { message: unknown };

/** Asserts the one error shape with this status, code and exactly these details (none if omitted). */
export async function expectError(response: Response, status: number, code: string, details?: Detail[]): Promise<void> {
	expect(response.status).toBe(status);
	const error = await errorOf(response);
	expect(error.code).toBe(code);
	expect(error.details).toEqual(details);
}

export interface IssuedKey {
	tenant: string;
	scope: "write" | "read";
	prefix: string;
	key: string;
}

/** POST /v1/admin/tenants/:id/keys, failing loudly on anything but 201. */
export async function issueKey(tenant: string, scope: "write" | "read"): Promise<IssuedKey> {
	const response = await postJson(`/v1/admin/tenants/${tenant}/keys`, { scope }, ADMIN_TOKEN);
	if (response.status !== 201) throw new Error(`key issue failed: ${response.status} ${await response.text()}`);
	return response.json<IssuedKey>();
}

/** DELETE /v1/admin/keys/:prefix with the admin token. */
export function revoke(prefix: string): Promise<Response> {
	return call(`/v1/admin/keys/${prefix}`, { method: "DELETE", key: ADMIN_TOKEN });
}

/** A route's name in test titles: its method and path. */
export const routeName = (route: { method: string; path: string }) => `${route.method} ${route.path}`;

/** The hex SHA-256 of a text: what D1 stores of a key. */
export async function sha256Hex(text: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
	return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

// ---- Hostile POST /v1/events requests ----

/** One request to POST /v1/events: its body, Content-Type (null: none), query and extra headers. */
export interface Attack {
	body: string | Uint8Array | (() => ReadableStream<Uint8Array>);
	contentType?: string | null;
	query?: string;
	headers?: Record<string, string>;
}

export interface Expected {
	status: number;
	code: string;
	details?: Detail[];
}

export const json = (value: unknown, extra: Omit<Attack, "body"> = {}): Attack => ({ body: JSON.stringify(value), ...extra });
/** JSON text sent as is: what JSON.stringify cannot say (a literal __proto__ key, NaN, 1e400). */
export const text = (body: string, contentType: string | null = "application/json"): Attack => ({ body, contentType });
/** A valid event with the given fields replaced. */
export const ev = (fields: Record<string, unknown> = {}) => ({ event: "api_call", ...fields });
export const withUsage = (fields: Record<string, unknown>) => ev({ usage: { sku: "tokens", quantity: 1, ...fields } });
export const chars = (n: number) => "x".repeat(n);
export const eventField = (path: string, message: unknown = expect.any(String)): Expected => ({
	status: 400,
	code: "invalid_request",
	details: [{ index: 0, path, message }],
});
export const batchField = (path: string, message: unknown = expect.any(String)): Expected => ({
	status: 400,
	code: "invalid_request",
	details: [{ path, message }],
});
export const UNKNOWN = "unknown field";

/** The POST /v1/events request an attack makes, with the tenant's write key. */
export function attackRequest(attack: Attack, key: string): Request {
	const headers = new Headers(attack.headers);
	headers.set("authorization", `Bearer ${key}`);
	const contentType = attack.contentType === undefined ? "application/json" : attack.contentType;
	if (contentType !== null) headers.set("content-type", contentType);
	const body = typeof attack.body === "function" ? attack.body() : attack.body;
	return new Request(EVENTS_URL + (attack.query ?? ""), { method: "POST", body, headers });
}
