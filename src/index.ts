// Meterline's Worker: HTTP producer, the two queue consumers, and the Durable Object classes.
import { consumeDeadLetters } from "./consumer/dead-letters";
import { consumeEvents } from "./consumer/events-consumer";
import { handleFetch } from "./router";

export { TenantAggregator } from "./aggregator/aggregator";
export { HealthMonitor } from "./sinks/health-monitor";
export { MeterlineIngest } from "./ingest/entrypoint";

export default {
	fetch: (request, env, ctx) => handleFetch(request, env, ctx),
	queue: (batch, env, ctx) => (batch.queue === "meterline-dead-letters" ? consumeDeadLetters(batch, env) : consumeEvents(batch, env, ctx)),
} satisfies ExportedHandler<Env, unknown>;
