// POST /v1/admin/tenants: creates a tenant with one write key and one read key, and its test space
// with one test key of each scope, all shown once.
import { issueKey, requireAdmin } from "../http/auth.js";
import { insertTenant } from "../sinks/d1/tenants.js";
import { readJson } from "../http/body.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";

/** A tenant id: 1-64 of a-z, 0-9, _ and -, starting with a letter or digit; never "~", which marks a test space. */
export const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export async function createTenant(request: Request, env: Env): Promise<Response> {
	await requireAdmin(request, env);
	const body = await readJson(request, 16 * 1024);
	if (!isPlainObject(body)) throw invalidField("body", "must be an object");
	for (const key of Object.keys(body)) if (key !== "id" && key !== "name") throw invalidField(key, "unknown field");
	const { id, name } = body;
	if (typeof id !== "string" || !TENANT_ID.test(id))
		throw invalidField("id", "must be 1-64 of a-z, 0-9, _ and -, starting with a letter or digit");
	if (name !== undefined && (typeof name !== "string" || name.length > 200))
		throw invalidField("name", "must be a string of at most 200 characters");

	const [write, read, testWrite, testRead] = await Promise.all([
		issueKey("write"),
		issueKey("read"),
		issueKey("write", true),
		issueKey("read", true),
	]);
	const createdAt = new Date().toISOString();
	const tenant = { id, name: (name as string | undefined) ?? id, createdAt };
	if (!(await insertTenant(env.DB, id, tenant.name, [write, read], [testWrite, testRead], createdAt))) {
		throw new ApiError(409, `Tenant ${id} already exists`, { details: [{ path: "id", message: "already exists" }] });
	}
	return json({ tenant, writeKey: write.key, readKey: read.key, testWriteKey: testWrite.key, testReadKey: testRead.key }, 201);
}
