// Meterline's Worker: HTTP producer, the two queue consumers, and the Durable Object classes.
import { consumeDeadLetters } from "./consumer/dead-letters";
import { consumeEvents } from "./consumer/events-consumer";
import { handleFetch } from "./http/router";

export { TenantAggregator } from "./aggregator/aggregator";
export { HealthMonitor } from "./health/monitor";

export default {
	fetch: (request, env, ctx) => handleFetch(request, env, ctx),
	queue: (batch, env, _ctx) => (batch.queue === "meterline-dead-letters" ? consumeDeadLetters(batch, env) : consumeEvents(batch, env)),
} satisfies ExportedHandler<Env, unknown>;
