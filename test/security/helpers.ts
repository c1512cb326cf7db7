// Security test plumbing: exact error assertions, a tenant's extra keys, and the admin calls tests repeat.
import { expect } from "vitest";
import type { FieldIssue } from "../../src/shared/errors";
import { ADMIN_TOKEN, call, postJson } from "../helpers/api";
import { errorOf } from "../producer/helpers";

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
