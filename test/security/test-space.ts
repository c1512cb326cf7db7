// Test-mode plumbing: a fresh tenant with its test space's keys, as POST /v1/admin/tenants issues them.
import { ADMIN_TOKEN, postJson, uniqueTenantId, type TestTenant } from "../helpers";

export interface TenantWithTestSpace {
	live: TestTenant;
	/** The test space as a tenant of its own: id "<tenant>~test" and the test keys. */
	test: TestTenant;
}

/** POST /v1/admin/tenants, failing loudly on anything but 201. */
export async function createTenantWithTestSpace(id = uniqueTenantId()): Promise<TenantWithTestSpace> {
	const response = await postJson("/v1/admin/tenants", { id }, ADMIN_TOKEN);
	if (response.status !== 201) throw new Error(`tenant creation failed: ${response.status} ${await response.text()}`);
	const body = await response.json<{ writeKey: string; readKey: string; testWriteKey: string; testReadKey: string }>();
	return {
		live: { id, writeKey: body.writeKey, readKey: body.readKey },
		test: { id: `${id}~test`, writeKey: body.testWriteKey, readKey: body.testReadKey },
	};
}
