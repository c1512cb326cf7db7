// Request analytics: one "$request" event per request with its route pattern (never the raw path,
// so ids do not explode the event's cardinality), method, status and duration, and the end user's
// country and the request's customer; a thrown error is named on it, and also recorded as "$error"
// when it made a 5xx. Analytics failures are reported to onError and never change the response.
import { COUNTRY, FIELD_LIMITS } from "../event/model.js";
import { newClient, type Client } from "./analytics.js";
import { errorFacts } from "./events.js";
import type { Analytics, AnalyticsOptions, ContextLike, ErrorInfo, Transport } from "./types.js";

export interface RequestLike {
	method: string;
	url: string;
}

export interface ResponseLike {
	status: number;
}

export interface MiddlewareOptions<Env = any, Req = Request> extends Omit<AnalyticsOptions, "customerId"> {
	/** Where events go; a function of env when the binding or key comes from env. */
	transport: Transport | ((env: Env) => Transport);
	/** The request event's name. Default "$request". */
	event?: string;
	/**
	 * The customer each request is billed to: a fixed id, or a function of the request, called once
	 * as the request starts (before the handler). It is the customerId of the request's events,
	 * the handler's own included, unless a call names its own; undefined or "" means none.
	 */
	customerId?: string | ((request: Req) => string | undefined);
}

export interface InstrumentOptions<Env = any, Req = RequestLike> extends MiddlewareOptions<Env, Req> {
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
	const attach = (request: RoutedRequest, env: Env, ctx: ContextLike, start?: number): RequestState | undefined => {
		try {
			const analytics = clientFor(options, env, ctx, request as unknown as Request);
			const state: RequestState = { analytics, start, error: undefined, recorded: false };
			(request as unknown as Record<symbol, RequestState>)[STATE] = state;
			request.analytics = state.analytics;
			return state;
		} catch (err) {
			report(options, err);
			return undefined;
		}
	};
	const record = (request: RoutedRequest, env: Env, ctx: ContextLike, outcome: { response?: unknown; thrown?: unknown }): void => {
		try {
			const state = (request as unknown as Record<symbol, RequestState | undefined>)[STATE] ?? attach(request, env, ctx);
			if (!state || state.recorded) return;
			state.recorded = true;
			const route = typeof request.route === "string" ? request.route : UNMATCHED_ROUTE;
			const { response, thrown } = outcome;
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
				record(request, env, ctx, { thrown: error });
				throw error;
			}
			try {
				return await userCatch(error, request, env, ctx);
			} catch (again) {
				record(request, env, ctx, { thrown: again });
				throw again;
			}
		},
		finally(response, request, env, ctx) {
			record(request, env, ctx, { response });
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
			analytics = clientFor(options, env, ctx, request);
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
			if (typeof pattern === "string" && pattern.length > 0) return pattern;
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
	// A longer route (a raw path that is mostly id) is cut to the field's limit, so the request still counts.
	if (route.length > FIELD_LIMITS.route.max) route = route.slice(0, FIELD_LIMITS.route.max);
	const properties: Record<string, unknown> = { method, status };
	if (error !== undefined) properties.error = errorName(error);
	const performance = duration === undefined ? { statusCode: status } : { duration, statusCode: status };
	analytics.record(event, { properties, performance, route });
	if (error !== undefined && status >= 500)
		analytics.record("$error", { properties: { method }, performance: { statusCode: 500 }, error: errorFacts(error), route });
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

function eventName(options: MiddlewareOptions<any, any>): string {
	return typeof options?.event === "string" && options.event.length > 0 ? options.event : "$request";
}

/**
 * A client for the request, with its customer and the end user's country (Cloudflare's, from
 * `request.cf`, else the options' own). If the transport cannot be had, its sends fail (and say
 * why) but it still works.
 */
function clientFor<Env, Req>(options: MiddlewareOptions<Env, Req>, env: Env, ctx: ContextLike, request: Req): Client {
	const { transport } = options;
	const cf = (request as { cf?: { country?: unknown } }).cf?.country;
	const perRequest: AnalyticsOptions = {
		...options,
		customerId: customerOf(options, request),
		country: typeof cf === "string" && COUNTRY.test(cf) ? cf : options.country,
	};
	return newClient(ctx, typeof transport === "function" ? () => transport(env) : transport, perRequest);
}

/** The request's customer; a customerId() that throws is reported, and the request has none. */
function customerOf<Req>(options: MiddlewareOptions<any, Req>, request: Req): string | undefined {
	let id: unknown = options.customerId;
	if (typeof id === "function") {
		try {
			id = (id as (request: Req) => unknown)(request);
		} catch (err) {
			report(options, err, 0);
			return undefined;
		}
	}
	return typeof id === "string" && id.length > 0 ? id : undefined;
}

function report(options: Omit<AnalyticsOptions, "customerId">, error: unknown, events = 1): void {
	const info: ErrorInfo = { stage: "track", events };
	try {
		if (typeof options?.onError === "function") options.onError(error, info);
		else console.error("meterline: request analytics failed", error);
	} catch {
		// Never let the hook change the response.
	}
}
