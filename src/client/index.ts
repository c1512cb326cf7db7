// meterline/client: record events from any Worker (or Node) without awaiting them; they leave in
// batches inside ctx.waitUntil, by queue, service binding or HTTP.
export { createAnalytics } from "./analytics";
export { InvalidEventError } from "./events";
export { analyticsOf, instrument, routeFromPath, UNMATCHED_ROUTE, withAnalytics } from "./middleware";
export type { InstrumentOptions, IttyAnalytics, IttyAnalyticsOptions, MiddlewareOptions, RequestLike, ResponseLike, RoutedRequest } from "./middleware";
export { SendError } from "./retry";
export type {
	Analytics,
	AnalyticsOptions,
	AnalyticsStats,
	ContextLike,
	EndpointTransport,
	ErrorInfo,
	ErrorStage,
	FetchLike,
	MeterlineEvent,
	Properties,
	QueueLike,
	QueueTransport,
	ServiceLike,
	ServiceTransport,
	Transport,
} from "./types";
