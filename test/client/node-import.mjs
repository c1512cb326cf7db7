// The built client as a Node package consumer sees it: `@meterline/client`, the workspace package,
// through its exports map, imported as an ES module by Node 22 (no type stripping), used once end
// to end with a queue-like stand-in. Run by `npm test` after `npm run build:client`.
import assert from "node:assert/strict";

assert.ok(Number(process.versions.node.split(".")[0]) >= 22, `Node 22 or later runs this check, not ${process.version}`);

const resolved = import.meta.resolve("@meterline/client");
assert.match(resolved, /\/src\/client\/dist\/client\/index\.js$/, `@meterline/client resolves to the workspace's build, not ${resolved}`);
const client = await import("@meterline/client");
// Node hands a CommonJS module to import() with a `default` export; the client has none.
assert.equal("default" in client, false, "@meterline/client loads as an ES module");
for (const name of ["createAnalytics", "withAnalytics", "instrument", "analyticsOf", "routeFromPath"]) {
	assert.equal(typeof client[name], "function", `@meterline/client exports ${name}`);
}

const pending = [];
const sent = [];
const errors = [];
const ctx = { waitUntil: (promise) => pending.push(promise) };
const queue = { sendBatch: async (messages) => void sent.push(...[...messages].map((message) => JSON.parse(message.body))) };
const analytics = client.createAnalytics(
	ctx,
	{ queue, tenant: "node-check" },
	{ onError: (error) => errors.push(error), redact: ["password"] },
);
analytics.track("node_check", { password: "hunter2", ok: true });
analytics.usage("api_calls", 0.1, "call");
analytics.flush();
// A settled promise may have registered more (the timer's release, the drain): wait until none are new.
for (let seen = 0; seen < pending.length;) {
	const count = pending.length;
	await Promise.all(pending.slice(seen));
	seen = count;
}

assert.deepEqual(errors, []);
assert.deepEqual(
	sent.map(({ v, tenant, events }) => ({
		v,
		tenant,
		events: events.map(({ event, properties, usage }) => ({ event, properties, usage })),
	})),
	[
		{
			v: 1,
			tenant: "node-check",
			events: [
				{ event: "node_check", properties: { password: "[redacted]", ok: true }, usage: undefined },
				{ event: "$usage", properties: undefined, usage: { sku: "api_calls", unit: "call", micros: 100000 } },
			],
		},
	],
);
assert.deepEqual(analytics.stats(), { queued: 0, sent: 2, dropped: 0, failed: 0 });
console.log(`@meterline/client: imported and sent 2 events in Node ${process.version}`);
