// createAnalytics: the hot path only builds an event and pushes it; batches leave by size, by
// timer or on flush(), one send at a time, always inside ctx.waitUntil. Nothing here throws.
import { EVENT_LIMITS } from "../event/model.js";
import { prepare, type Pending, type PrepareConfig } from "./events.js";
import type { RetryPolicy } from "./retry.js";
import { senderFor, type Prepared, type Sender } from "./transports.js";
import type { Analytics, AnalyticsOptions, AnalyticsStats, ContextLike, ErrorInfo, Properties, Transport } from "./types.js";
import { uuidv7 } from "../shared/ids.js";

const DEFAULTS = { batchSize: 20, flushInterval: 1000, maxQueue: 1000, retries: 3, retryDelay: 100, maxRetryDelay: 10_000 };

/** A whole number within [min, max], or the default. */
function option(value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
	return typeof value === "number" && Number.isFinite(value) ? Math.min(max, Math.max(min, Math.floor(value))) : fallback;
}

function defaultOnError(error: unknown, info: ErrorInfo): void {
	console.error(`meterline: ${info.stage} failed (${info.events} event${info.events === 1 ? "" : "s"})`, error);
}

/** An analytics client for one request (or one queue batch, or one scheduled run). */
export function createAnalytics(ctx: ContextLike, transport: Transport, options: AnalyticsOptions = {}): Analytics {
	return newClient(ctx, transport, options);
}

/**
 * A client, or (if the options themselves throw) one whose sends fail and are counted. A transport
 * given as a function is resolved here: if it throws, every send fails with its error.
 */
export function newClient(ctx: ContextLike, transport: Transport | (() => Transport), options: AnalyticsOptions | undefined): Client {
	try {
		return new Client(ctx, transport, options ?? {});
	} catch (err) {
		defaultOnError(err, { stage: "track", events: 0 });
		return new Client(ctx, {} as Transport, {});
	}
}

export class Client implements Analytics {
	private readonly buffer: Pending[] = [];
	private readonly counts: AnalyticsStats = { queued: 0, sent: 0, dropped: 0, failed: 0 };
	private readonly batchSize: number;
	private readonly flushInterval: number;
	private readonly maxQueue: number;
	private readonly config: PrepareConfig;
	private readonly onError: (error: unknown, info: ErrorInfo) => void;
	private readonly send: Sender;
	private userId: string | undefined;
	private readonly sessionId: string | undefined;
	/** A drain is scheduled or running; it sends until nothing is due. */
	private draining = false;
	/** flush() or the timer asked for a partial batch to go. */
	private flushAll = false;
	private timer: ReturnType<typeof setTimeout> | undefined;
	private releaseTimer: (() => void) | undefined;

	constructor(
		private readonly ctx: ContextLike,
		transport: Transport | (() => Transport),
		options: AnalyticsOptions,
	) {
		this.batchSize = option(options.batchSize, DEFAULTS.batchSize, 1, EVENT_LIMITS.maxEventsPerBatch);
		// Timers overflow past 2^31 - 1 ms and would fire at once.
		this.flushInterval = option(options.flushInterval, DEFAULTS.flushInterval, 0, 2_147_483_647);
		this.maxQueue = option(options.maxQueue, DEFAULTS.maxQueue, 1);
		this.onError = typeof options.onError === "function" ? options.onError : defaultOnError;
		this.userId = typeof options.userId === "string" ? options.userId : undefined;
		this.sessionId = typeof options.sessionId === "string" ? options.sessionId : undefined;
		let redact: ReadonlySet<string> = new Set();
		try {
			redact = new Set((options.redact ?? []).map((key) => String(key).toLowerCase()));
		} catch (err) {
			this.report(err, "track", 0);
		}
		const defaults = options.defaults !== null && typeof options.defaults === "object" ? options.defaults : undefined;
		this.config = { defaults, redact };
		const policy: RetryPolicy = {
			retries: option(options.retries, DEFAULTS.retries, 0),
			retryDelay: option(options.retryDelay, DEFAULTS.retryDelay, 0),
			maxRetryDelay: option(options.maxRetryDelay, DEFAULTS.maxRetryDelay, 0),
		};
		let send: Sender;
		try {
			send = senderFor(typeof transport === "function" ? transport() : transport, policy);
		} catch (err) {
			send = async (events, settle) => settle(events.length, err);
		}
		this.send = send;
	}

	track(event: string, properties?: Properties): void {
		try {
			if (typeof event !== "string" || event.length === 0) return this.reject("track(event) needs a non-empty event name");
			if (properties !== undefined && (typeof properties !== "object" || properties === null))
				return this.reject("track(event, properties) needs an object");
			this.push(event, properties, undefined, undefined, undefined);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	identify(userId: string, traits?: Properties): void {
		try {
			if (typeof userId !== "string") return this.reject("identify(userId) needs a string");
			if (traits !== undefined && (typeof traits !== "object" || traits === null))
				return this.reject("identify(userId, traits) needs an object");
			this.userId = userId;
			this.push("$identify", traits, undefined, undefined, undefined);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	usage(sku: string, quantity: number | string, unit?: string): void {
		try {
			if (typeof sku !== "string" || sku.length === 0) return this.reject("usage(sku) needs a non-empty sku");
			if (typeof quantity !== "number" && typeof quantity !== "string")
				return this.reject("usage(sku, quantity) needs a number or a decimal string");
			if (unit !== undefined && typeof unit !== "string") return this.reject("usage(sku, quantity, unit) needs a string unit");
			this.push("$usage", undefined, undefined, unit === undefined ? { sku, quantity } : { sku, quantity, unit }, undefined);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	trackError(error: unknown, context?: Properties): void {
		try {
			if (context !== undefined && (typeof context !== "object" || context === null))
				return this.reject("trackError(error, context) needs an object");
			const facts = errorFacts(error);
			this.push("$error", context, { statusCode: 500 }, undefined, facts);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	trackPerformance(name: string, durationMs: number, properties?: Properties): void {
		try {
			if (typeof name !== "string" || name.length === 0) return this.reject("trackPerformance(name) needs a non-empty name");
			if (typeof durationMs !== "number") return this.reject("trackPerformance(name, durationMs) needs a number");
			if (properties !== undefined && (typeof properties !== "object" || properties === null))
				return this.reject("trackPerformance(name, durationMs, properties) needs an object");
			this.push(name, properties, { duration: durationMs }, undefined, undefined);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	flush(): void {
		try {
			if (this.buffer.length === 0) return;
			this.flushAll = true;
			this.schedule();
		} catch (err) {
			this.report(err, "schedule", 0);
		}
	}

	stats(): AnalyticsStats {
		return { ...this.counts };
	}

	/** Any event with performance figures; the middleware records requests with it. */
	record(event: string, properties: Properties | undefined, performance: Pending["performance"]): void {
		try {
			this.push(event, properties, performance, undefined, undefined);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	/** The hot path: one id, one object, one push; a full buffer or the first event schedules work. */
	private push(
		event: string,
		properties: Properties | undefined,
		performance: Pending["performance"],
		usage: Pending["usage"],
		error: Pending["error"],
	): void {
		const timestamp = Date.now();
		this.buffer.push({
			id: uuidv7(timestamp),
			event,
			timestamp,
			userId: this.userId,
			sessionId: this.sessionId,
			properties,
			performance,
			usage,
			error,
		});
		this.counts.queued++;
		if (this.buffer.length > this.maxQueue) {
			this.buffer.shift();
			this.counts.queued--;
			this.counts.dropped++;
		}
		if (this.buffer.length >= this.batchSize) this.schedule();
		else if (this.timer === undefined && this.flushInterval > 0) this.startTimer();
	}

	private reject(message: string): void {
		this.counts.dropped++;
		this.report(new TypeError(message), "track", 1);
	}

	private report(error: unknown, stage: ErrorInfo["stage"], events: number): void {
		try {
			this.onError(error, { stage, events });
		} catch {
			// The hook's own failure must not reach the caller either.
		}
	}

	/** Hands `promise` to ctx.waitUntil, so the platform keeps the invocation alive for it. */
	private keepAlive(promise: Promise<unknown>): void {
		try {
			this.ctx.waitUntil(promise);
		} catch (err) {
			this.report(err, "schedule", 0);
		}
	}

	/** Sends a partial batch flushInterval after the first unsent event; waitUntil covers the wait. */
	private startTimer(): void {
		const waited = new Promise<void>((resolve) => {
			this.releaseTimer = resolve;
			this.timer = setTimeout(() => {
				this.timer = undefined;
				this.releaseTimer = undefined;
				this.flush();
				resolve();
			}, this.flushInterval);
		});
		this.keepAlive(waited);
	}

	private stopTimer(): void {
		if (this.timer === undefined) return;
		clearTimeout(this.timer);
		this.releaseTimer?.();
		this.timer = undefined;
		this.releaseTimer = undefined;
	}

	/** Starts a drain unless one is on its way; it begins after the caller's synchronous code. */
	private schedule(): void {
		if (this.draining) return;
		this.draining = true;
		this.keepAlive(Promise.resolve().then(() => this.drain()));
	}

	private due(): boolean {
		return this.buffer.length >= this.batchSize || (this.flushAll && this.buffer.length > 0);
	}

	/** Sends batches, one at a time, until nothing is due. Never rejects. */
	private async drain(): Promise<void> {
		try {
			while (this.due()) {
				const batch = this.buffer.splice(0, this.batchSize);
				if (this.buffer.length === 0) {
					this.flushAll = false;
					this.stopTimer();
				}
				await this.sendBatch(batch);
			}
		} catch (err) {
			this.report(err, "schedule", 0);
		} finally {
			this.draining = false;
		}
	}

	private async sendBatch(batch: Pending[]): Promise<void> {
		const now = Date.now();
		const ready: Prepared[] = [];
		for (const pending of batch) {
			try {
				ready.push(await prepare(pending, this.config, now));
			} catch (err) {
				this.counts.queued--;
				this.counts.dropped++;
				this.report(err, "validate", 1);
			}
		}
		if (ready.length === 0) return;
		let unsettled = ready.length;
		const settle = (events: number, error?: unknown) => {
			unsettled -= events;
			this.counts.queued -= events;
			if (error === undefined) this.counts.sent += events;
			else {
				this.counts.failed += events;
				this.report(error, "send", events);
			}
		};
		try {
			await this.send(ready, settle);
		} catch (err) {
			// Senders settle every event; this only guards against one that did not.
			if (unsettled > 0) settle(unsettled, err);
		}
	}
}

/** Name, message and stack of anything thrown; read now, while the error is as it was. */
function errorFacts(error: unknown): NonNullable<Pending["error"]> {
	if (typeof error === "object" && error !== null) {
		const { name, message, stack } = error as { name?: unknown; message?: unknown; stack?: unknown };
		return {
			name: typeof name === "string" ? name : "Error",
			message: typeof message === "string" ? message : String(error),
			stack: typeof stack === "string" ? stack : undefined,
		};
	}
	return { name: "Error", message: String(error), stack: undefined };
}
