// @meterline/client: record events from any Worker (or Node) without awaiting them; they leave in
// batches inside ctx.waitUntil, by queue, service binding or HTTP.
export { createAnalytics } from "./analytics.js";
export { InvalidEventError } from "./events.js";
export { analyticsOf, instrument, routeFromPath, UNMATCHED_ROUTE, withAnalytics } from "./middleware.js";
export type {
	InstrumentOptions,
	IttyAnalytics,
	IttyAnalyticsOptions,
	MiddlewareOptions,
	RequestLike,
	ResponseLike,
	RoutedRequest,
} from "./middleware.js";
export { SendError } from "./retry.js";
export type {
	Analytics,
	AnalyticsOptions,
	AnalyticsStats,
	ContextLike,
	EndpointTransport,
	ErrorInfo,
	ErrorStage,
	EventOptions,
	FetchLike,
	MeterlineEvent,
	Properties,
	QueueLike,
	QueueTransport,
	ServiceLike,
	ServiceTransport,
	Transport,
} from "./types.js";
