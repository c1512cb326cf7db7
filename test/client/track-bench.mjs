// The hot path's cost in Node 22, on the built module: `npm run build:client && node test/client/track-bench.mjs`.
// 500 track() calls per client (as a busy request might make), never sent, so only track() is timed.
import { createAnalytics } from "@meterline/client";

const ctx = { waitUntil: () => {} };
const queue = { sendBatch: async () => {} };
const properties = { plan: "pro", path: "/pricing" };
const rounds = 4000;
const perClient = 500;

let elapsed = 0n;
for (let round = 0; round < rounds; round++) {
	const analytics = createAnalytics(ctx, { queue, tenant: "bench" }, { batchSize: 1000, flushInterval: 0 });
	const start = process.hrtime.bigint();
	for (let i = 0; i < perClient; i++) analytics.track("page_view", properties);
	if (round >= rounds / 4) elapsed += process.hrtime.bigint() - start; // the first quarter warms up
}
const calls = (rounds - rounds / 4) * perClient;
console.log(`track(): ${(Number(elapsed) / calls).toFixed(0)} ns per call over ${calls} calls (${process.version})`);
