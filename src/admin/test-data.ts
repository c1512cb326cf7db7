// DELETE /v1/test-data: wipes the caller's test space, and never anything of the live tenant.
import { authenticate } from "../http/auth.js";
import { onlyQuery } from "../http/params.js";
import { isTestSpace, testSpaceOf, wipeTestSpace } from "../sinks/d1/tenants.js";
import { ApiError, json } from "../shared/errors.js";

/**
 * Takes the tenant's live read key or its test read key: both name the same test space. The test
 * space's aggregator is flushed first, so no delta it still holds lands in D1 after the wipe.
 */
export async function deleteTestData(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const space = isTestSpace(tenant) ? tenant : testSpaceOf(tenant);
	try {
		await env.AGGREGATOR.getByName(space).flush();
	} catch (err) {
		console.error("test space flush failed", { tenant: space }, err);
		throw new ApiError(503, "The test space could not be flushed; nothing was wiped, retry shortly", {
			headers: { "retry-after": "5" },
		});
	}
	return json({ tenant: space, wiped: { tables: await wipeTestSpace(env.DB, space) } });
}
