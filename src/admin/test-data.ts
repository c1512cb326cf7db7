// DELETE /v1/test-data: wipes the caller's test space, and never anything of the live tenant.
import { authenticate } from "../http/auth.js";
import { onlyQuery } from "../http/params.js";
import { isTestSpace, testSpaceOf, wipeTestSpace } from "../sinks/d1/tenants.js";
import { ApiError, json } from "../shared/errors.js";

/**
 * Takes the tenant's live read key or its test read key: both name the same test space. Its
 * aggregator is wiped first (storage and alarm), so nothing it still held lands in D1 afterwards;
 * then its D1 rows, then its archive parts in R2.
 */
export async function deleteTestData(request: Request, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	onlyQuery(new URL(request.url), []);
	const space = isTestSpace(tenant) ? tenant : testSpaceOf(tenant);
	try {
		await env.AGGREGATOR.getByName(space).wipe(space);
	} catch (err) {
		console.error("test space wipe failed", { tenant: space }, err);
		throw new ApiError(503, "The test space's aggregator could not be wiped; nothing else was, retry shortly", {
			headers: { "retry-after": "5" },
		});
	}
	const tables = await wipeTestSpace(env.DB, space);
	return json({ tenant: space, wiped: { aggregator: true, tables, archiveParts: await deleteArchive(env, space) } });
}

/** Deletes every archive part of a test space, 1,000 keys per call. */
async function deleteArchive(env: Env, space: string): Promise<number> {
	if (!env.ARCHIVE) return 0;
	let deleted = 0;
	for (;;) {
		const listed = await env.ARCHIVE.list({ prefix: `tenant=${space}/`, limit: 1000 });
		if (listed.objects.length === 0) return deleted;
		await env.ARCHIVE.delete(listed.objects.map((object) => object.key));
		deleted += listed.objects.length;
	}
}
