// POST /v1/admin/tenants/:id/keys issues a key; DELETE /v1/admin/keys/:prefix revokes one.
import type { IRequest } from "itty-router";
import { issueKey, KEY_CACHE_TTL_MS, PREFIX_LENGTH, requireAdmin } from "../http/auth.js";
import { insertKey, revokeKey, type Scope } from "../sinks/d1/tenants.js";
import { readJson } from "../http/body.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { pathParam } from "../http/params.js";
import { isPlainObject } from "../shared/objects.js";

export async function createKey(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const body = await readJson(request, 16 * 1024);
	if (!isPlainObject(body)) throw invalidField("body", "must be an object");
	for (const key of Object.keys(body)) if (key !== "scope") throw invalidField(key, "unknown field");
	if (body.scope !== "write" && body.scope !== "read") throw invalidField("scope", 'must be "write" or "read"');
	const tenant = pathParam(request, "id");
	const key = await issueKey(body.scope as Scope);
	if (!(await insertKey(env.DB, tenant, key, new Date().toISOString()))) throw new ApiError(404, `No tenant ${tenant}`);
	return json({ tenant, scope: key.scope, prefix: key.prefix, key: key.key }, 201);
}

export async function deleteKey(request: IRequest, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const prefix = pathParam(request, "prefix");
	if (prefix.length !== PREFIX_LENGTH) throw invalidField("prefix", `must be the key's first ${PREFIX_LENGTH} characters`);
	if (!(await revokeKey(env.DB, prefix, new Date().toISOString()))) throw new ApiError(404, `No live key with prefix ${prefix}`);
	return json({ revoked: prefix, effectiveWithinMs: KEY_CACHE_TTL_MS });
}
