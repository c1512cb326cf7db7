// POST /v1/admin/tenants/:id/keys issues a key (with "test": true, one of the tenant's test
// space); DELETE /v1/admin/keys/:prefix revokes one.
import type { IRequest } from "itty-router";
import { issueKey, KEY_CACHE_TTL_MS, prefixLength, requireAdmin } from "../http/auth.js";
import { insertKey, revokeKey, testSpaceOf, type Scope } from "../sinks/d1/tenants.js";
import { TENANT_ID } from "./tenants.js";
import { readJson } from "../http/body.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { pathParam } from "../http/params.js";
import { isPlainObject } from "../shared/objects.js";

export async function createKey(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const body = await readJson(request, 16 * 1024);
	if (!isPlainObject(body)) throw invalidField("body", "must be an object");
	for (const key of Object.keys(body)) if (key !== "scope" && key !== "test") throw invalidField(key, "unknown field");
	if (body.scope !== "write" && body.scope !== "read") throw invalidField("scope", 'must be "write" or "read"');
	if (body.test !== undefined && typeof body.test !== "boolean") throw invalidField("test", "must be a boolean");
	const test = body.test === true;
	const tenant = pathParam(request, "id");
	// A test space is reached through its live tenant ("test": true), never by its own id.
	if (!TENANT_ID.test(tenant)) throw new ApiError(404, `No tenant ${tenant}`);
	const key = await issueKey(body.scope as Scope, test);
	if (!(await insertKey(env.DB, tenant, key, new Date().toISOString(), test))) throw new ApiError(404, `No tenant ${tenant}`);
	// tenant is the id the key authenticates as, the one every response to it names.
	return json({ tenant: test ? testSpaceOf(tenant) : tenant, scope: key.scope, prefix: key.prefix, key: key.key }, 201);
}

export async function deleteKey(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const prefix = pathParam(request, "prefix");
	const length = prefixLength(prefix);
	if (prefix.length !== length) throw invalidField("prefix", `must be the key's first ${length} characters`);
	if (!(await revokeKey(env.DB, prefix, new Date().toISOString()))) throw new ApiError(404, `No live key with prefix ${prefix}`);
	return json({ revoked: prefix, effectiveWithinMs: KEY_CACHE_TTL_MS });
}
