// Node-side tests (*.node.test.ts): the real Segment and PostHog SDKs against the pipeline running
// locally in workerd through wrangler's programmatic dev server, and the benchmark.
import path from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
	test: {
		root: path.join(import.meta.dirname, ".."),
		include: ["test/**/*.node.test.ts"],
		environment: "node",
		testTimeout: 120_000,
		hookTimeout: 120_000,
	},
});
