// Tests run inside workerd with the real local Queues, Durable Objects and D1 from wrangler.toml.
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
// @ts-expect-error: a plain .mjs script (no types), also run by npm and wrangler's [build].
import { bundleDashboard } from "../src/scripts/bundle-dashboard.mjs";

/** The tests' dead-letter consumer max_retries, also handed to the consumer as DEAD_LETTER_MAX_RETRIES (they must agree). */
const DEAD_LETTER_MAX_RETRIES = 3;

export default defineConfig(async () => {
	const root = path.join(import.meta.dirname, "..");
	// The Worker imports the dashboard's bundled files; `vitest run` alone must not need npm to make them.
	bundleDashboard();
	const migrations = await readD1Migrations(path.join(root, "migrations"));
	return {
		plugins: [
			cloudflareTest({
				wrangler: { configPath: path.join(root, "wrangler.toml") },
				miniflare: {
					// exports.default.queue() lets consumer tests call the real handler with a batch.
					compatibilityFlags: ["service_binding_extra_handlers"],
					// METRICS_REPORT_MS 0: each request reports its producer counters, so tests can read them.
					bindings: {
						TEST_MIGRATIONS: migrations,
						ADMIN_TOKEN: "test-admin-token",
						DESTINATIONS_KEY: "test-destinations-key",
						METRICS_REPORT_MS: "0",
						// The archive is off unless a test turns it on in its aggregator (test/aggregator/archive.test.ts):
						// every other test counts the aggregator's rows and alarms without it.
						ARCHIVE_INTERVAL_MS: "0",
						DEAD_LETTER_MAX_RETRIES: String(DEAD_LETTER_MAX_RETRIES),
					},
					// Deliver fast, and give up after 2 retries, so tests do not wait on production timings.
					queueConsumers: {
						"meterline-events": {
							maxBatchTimeout: 0.05,
							maxBatchSize: 100,
							maxRetries: 2,
							retryDelay: 0,
							deadLetterQueue: "meterline-dead-letters",
						},
						"meterline-dead-letters": {
							maxBatchTimeout: 0.05,
							maxBatchSize: 100,
							maxRetries: DEAD_LETTER_MAX_RETRIES,
							retryDelay: 0,
						},
						"meterline-forward": {
							maxBatchTimeout: 0.05,
							maxBatchSize: 10,
							maxRetries: 2,
							retryDelay: 0,
						},
					},
				},
			}),
		],
		test: {
			root,
			include: ["test/**/*.test.ts"],
			// Node-side tests (*.node.test.ts: the real SDKs, the benchmark) run under test/node.vitest.config.ts.
			exclude: ["**/*.node.test.ts"],
			setupFiles: ["test/setup.ts"],
			testTimeout: 60_000,
		},
	};
});
