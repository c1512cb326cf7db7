// Small fixtures for tests: call the Worker through its real fetch handler, create tenants.
import { exports } from "cloudflare:workers";

export const ADMIN_TOKEN = "test-admin-token";
const BASE = "https://meterline.test";

let counter = 0;
/** A tenant id no other test uses: storage is shared within a test file. */
export function uniqueTenantId(label = "t"): string {
	return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

export function call(path: string, init: RequestInit & { key?: string; body?: BodyInit | null } = {}): Promise<Response> {
	const headers = new Headers(init.headers);
	if (init.key !== undefined) headers.set("authorization", `Bearer ${init.key}`);
	if (typeof init.body === "string" && !headers.has("content-type")) headers.set("content-type", "application/json");
	return exports.default.fetch(new Request(BASE + path, { ...init, headers }));
}

/** GETs `path` as JSON with `key`, failing loudly on anything but 200. */
export async function getJson<T>(path: string, key: string): Promise<T> {
	const response = await call(path, { key });
	if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
	return response.json<T>();
}

export function postJson(path: string, body: unknown, key?: string, init: RequestInit = {}): Promise<Response> {
	return call(path, { ...init, method: "POST", body: JSON.stringify(body), key });
}

export interface TestTenant {
	id: string;
	writeKey: string;
	readKey: string;
}

export async function createTenant(id = uniqueTenantId()): Promise<TestTenant> {
	const response = await postJson("/v1/admin/tenants", { id, name: `Tenant ${id}` }, ADMIN_TOKEN);
	if (response.status !== 201) throw new Error(`tenant creation failed: ${response.status} ${await response.text()}`);
	const body = await response.json<{ writeKey: string; readKey: string }>();
	return { id, writeKey: body.writeKey, readKey: body.readKey };
}
