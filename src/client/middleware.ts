// Request analytics: one "$request" event per request with its method, route pattern (never the raw
// path, so ids do not explode the event's cardinality), status and duration; a thrown error is
// named on it, and also recorded as "$error" when it made a 5xx. Analytics failures are reported
// to onError and never change the response.
import { newClient, type Client } from "./analytics.js";
import type { Analytics, AnalyticsOptions, ContextLike, ErrorInfo, Transport } from "./types.js";

export interface RequestLike {
	method: string;
	url: string;
}

export interface ResponseLike {
	status: number;
}

export interface MiddlewareOptions<Env = any> extends AnalyticsOptions {
	/** Where events go; a function of env when the binding or key comes from env. */
	transport: Transport | ((env: Env) => Transport);
	/** The request event's name. Default "$request". */
	event?: string;
}

export interface InstrumentOptions<Env = any, Req = RequestLike> extends MiddlewareOptions<Env> {
	/** The route pattern for a request; default: the path with numeric and UUID segments as ":id". */
	route?: (request: Req) => string | undefined;
}

export interface IttyAnalyticsOptions<Env = any> extends MiddlewareOptions<Env> {
	/** Your router's error handler (e.g. itty's `error`); it still makes the response. */
	catch?: (error: any, request: any, ...args: any[]) => unknown;
}

/** A request as itty-router hands it to hooks: `route` is the matched pattern, e.g. "/v1/items/:id". */
export interface RoutedRequest extends RequestLike {
	route?: string;
	analytics?: Analytics;
}

/** Hooks for `Router({ before: [m.before], catch: m.catch, finally: [m.finally] })`, `before` first. */
export interface IttyAnalytics<Env = any> {
	before(request: RoutedRequest, env: Env, ctx: ContextLike): void;
	catch(error: unknown, request: RoutedRequest, env: Env, ctx: ContextLike): Promise<unknown>;
	finally(response: unknown, request: RoutedRequest, env: Env, ctx: ContextLike): void;
}

/** The route recorded when itty matched no route. */
export const UNMATCHED_ROUTE = "(unmatched)";
const STATE = Symbol("meterline.request");
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface RequestState {
	analytics: Client;
	start: number | undefined;
	error: unknown;
	recorded: boolean;
}

/** The analytics client the middleware attached to a request, to track the handler's own events. */
export function analyticsOf(request: object): Analytics | undefined {
	return (request as RoutedRequest).analytics;
}

/** itty-router 5 hooks: `before` starts the clock, `finally` records and flushes, `catch` notes a thrown error. */
export function withAnalytics<Env = any>(options: IttyAnalyticsOptions<Env>): IttyAnalytics<Env> {
	const event = eventName(options);
	const userCatch = options?.catch;
	const attach = (request: RoutedRequest, env: Env, ctx: ContextLike, start: number | undefined): RequestState | undefined => {
		try {
			const state: RequestState = { analytics: clientFor(options, env, ctx), start, error: undefined, recorded: false };
			(request as unknown as Record<symbol, RequestState>)[STATE] = state;
			request.analytics = state.analytics;
			return state;
		} catch (err) {
			report(options, err);
			return undefined;
		}
	};
	const record = (request: RoutedRequest, env: Env, ctx: ContextLike, response: unknown, thrown?: unknown): void => {
		try {
			const state = (request as unknown as Record<symbol, RequestState | undefined>)[STATE] ?? attach(request, env, ctx, undefined);
			if (!state || state.recorded) return;
			state.recorded = true;
			const route = typeof request.route === "string" ? request.route : UNMATCHED_ROUTE;
			const status = thrown !== undefined ? 500 : statusOf(response);
			const duration = state.start === undefined ? undefined : Date.now() - state.start;
			finish(state.analytics, event, request.method, route, status, duration, thrown ?? state.error);
		} catch (err) {
			report(options, err);
		}
	};
	return {
		before(request, env, ctx) {
			attach(request, env, ctx, Date.now());
		},
		async catch(error, request, env, ctx) {
			try {
				const state = (request as unknown as Record<symbol, RequestState | undefined>)[STATE];
				if (state) state.error = error;
			} catch (err) {
				report(options, err);
			}
			// itty skips `finally` when the catch handler throws: record here, then rethrow.
			if (typeof userCatch !== "function") {
				record(request, env, ctx, undefined, error);
				throw error;
			}
			try {
				return await userCatch(error, request, env, ctx);
			} catch (again) {
				record(request, env, ctx, undefined, again);
				throw again;
			}
		},
		finally(response, request, env, ctx) {
			record(request, env, ctx, response);
		},
	};
}

/** Wraps any `fetch(request, env, ctx)` handler; its response (or its throw) passes through unchanged. */
export function instrument<Req extends RequestLike, Env, Ctx extends ContextLike, Res extends ResponseLike>(
	handler: (request: Req, env: Env, ctx: Ctx) => Res | Promise<Res>,
	options: InstrumentOptions<Env, Req>,
): (request: Req, env: Env, ctx: Ctx) => Promise<Res> {
	const event = eventName(options);
	return async (request, env, ctx) => {
		const start = Date.now();
		let analytics: Client | undefined;
		try {
			analytics = clientFor(options, env, ctx);
			(request as RoutedRequest).analytics = analytics;
		} catch (err) {
			report(options, err);
		}
		const record = (status: number, error?: unknown) => {
			try {
				if (analytics) finish(analytics, event, request.method, routeOf(request, options.route), status, Date.now() - start, error);
			} catch (err) {
				report(options, err);
			}
		};
		let response: Res;
		try {
			response = await handler(request, env, ctx);
		} catch (error) {
			record(500, error);
			throw error;
		}
		record(statusOf(response));
		return response;
	};
}

/** A URL's path with numeric and UUID segments replaced by ":id". */
export function routeFromPath(url: string): string {
	return new URL(url).pathname
		.split("/")
		.map((segment) => (/^\d+$/.test(segment) || UUID.test(segment) ? ":id" : segment))
		.join("/");
}

function routeOf<Req extends RequestLike>(request: Req, route: ((request: Req) => string | undefined) | undefined): string {
	if (typeof route === "function") {
		try {
			const pattern = route(request);
			if (typeof pattern === "string") return pattern;
		} catch {
			// Fall back to the path's shape.
		}
	}
	return routeFromPath(request.url);
}

/**
 * Records the request; a thrown error adds its name to it, and "$error" too when the answer was a
 * 5xx (a StatusError(404) that the router's catch turned into a 404 is not a server error).
 */
function finish(
	analytics: Client,
	event: string,
	method: string,
	route: string,
	status: number,
	duration: number | undefined,
	error: unknown,
): void {
	const properties: Record<string, unknown> = { method, route, status };
	if (error !== undefined) properties.error = errorName(error);
	analytics.record(event, properties, duration === undefined ? { statusCode: status } : { duration, statusCode: status });
	if (error !== undefined && status >= 500) analytics.trackError(error, { method, route });
	analytics.flush();
}

function errorName(error: unknown): string {
	const name = typeof error === "object" && error !== null ? (error as { name?: unknown }).name : undefined;
	return typeof name === "string" ? name : "Error";
}

/** A Response's status; with no response at all (nothing matched) 404, any other value 200. */
function statusOf(response: unknown): number {
	if (response === undefined || response === null) return 404;
	const status = (response as Partial<ResponseLike>).status;
	return typeof status === "number" ? status : 200;
}

function eventName(options: MiddlewareOptions): string {
	return typeof options?.event === "string" && options.event.length > 0 ? options.event : "$request";
}

/** A client for the request; if the transport cannot be had, its sends fail (and say why) but it still works. */
function clientFor<Env>(options: MiddlewareOptions<Env>, env: Env, ctx: ContextLike): Client {
	const { transport } = options;
	return newClient(ctx, typeof transport === "function" ? () => transport(env) : transport, options);
}

function report(options: AnalyticsOptions, error: unknown): void {
	const info: ErrorInfo = { stage: "track", events: 1 };
	try {
		if (typeof options?.onError === "function") options.onError(error, info);
		else console.error("meterline: request analytics failed", error);
	} catch {
		// Never let the hook change the response.
	}
}
