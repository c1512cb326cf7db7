// Meterline's Worker: HTTP producer, the three queue consumers, and the Durable Object classes.
import { consumeDeadLetters } from "./consumer/dead-letters.js";
import { consumeEvents } from "./consumer/events-consumer.js";
import { consumeForward } from "./forward/consumer.js";
import { handleFetch } from "./router.js";

export { TenantAggregator } from "./aggregator/aggregator.js";
export { HealthMonitor } from "./sinks/health-monitor.js";
export { MeterlineIngest } from "./ingest/entrypoint.js";

export default {
	fetch: (request, env, ctx) => handleFetch(request, env, ctx),
	queue: (batch, env, ctx) =>
		batch.queue === "meterline-forward"
			? consumeForward(batch, env)
			: batch.queue === "meterline-dead-letters"
				? consumeDeadLetters(batch, env)
				: consumeEvents(batch, env, ctx),
} satisfies ExportedHandler<Env, unknown>;
