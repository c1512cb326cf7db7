// Meterline's Worker: HTTP producer, queue consumer, and the per-tenant aggregator class.
import { consumeEvents } from "./consumer/events-consumer";
import { handleFetch } from "./http/router";

export { TenantAggregator } from "./aggregator/aggregator";

export default {
	fetch: (request, env, ctx) => handleFetch(request, env, ctx),
	queue: (batch, env, _ctx) => consumeEvents(batch, env),
} satisfies ExportedHandler<Env, unknown>;
