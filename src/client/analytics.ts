// createAnalytics: the hot path only builds an event and pushes it; batches leave by size, by
// timer or on flush(), one send at a time, always inside ctx.waitUntil. Nothing here throws.
import { errorFacts, prepare, type Pending, type PrepareConfig } from "./events.js";
import { defaultOnError, resolveOptions } from "./options.js";
import { senderFor, type Prepared, type Sender } from "./transports.js";
import type { Analytics, AnalyticsOptions, AnalyticsStats, ContextLike, ErrorInfo, EventOptions, Properties, Transport } from "./types.js";
import { uuidv7 } from "../shared/ids.js";

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

/** What an event carries besides its name; every field optional. */
type Extra = Partial<Pick<Pending, "properties" | "performance" | "usage" | "error" | "route">>;

/** Whether an optional argument (properties, options) is absent or an object. */
const objectOrAbsent = (value: unknown): boolean => value === undefined || (typeof value === "object" && value !== null);

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
	private readonly customerId: string | undefined;
	private readonly country: string | undefined;
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
		const resolved = resolveOptions(options);
		this.batchSize = resolved.batchSize;
		this.flushInterval = resolved.flushInterval;
		this.maxQueue = resolved.maxQueue;
		this.onError = resolved.onError;
		this.userId = resolved.userId;
		this.sessionId = resolved.sessionId;
		this.customerId = resolved.customerId;
		this.country = resolved.country;
		this.config = resolved.config;
		const policy = resolved.policy;
		let send: Sender;
		try {
			send = senderFor(typeof transport === "function" ? transport() : transport, policy);
		} catch (err) {
			send = async (events, settle) => settle(events.length, err);
		}
		this.send = send;
	}

	track(event: string, properties?: Properties, options?: EventOptions): void {
		try {
			if (typeof event !== "string" || event.length === 0) return this.reject("track(event) needs a non-empty event name");
			if (!objectOrAbsent(properties)) return this.reject("track(event, properties) needs an object");
			if (!objectOrAbsent(options)) return this.reject("track(event, properties, options) needs an object");
			this.push(event, { properties }, options);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	identify(userId: string, traits?: Properties): void {
		try {
			if (typeof userId !== "string") return this.reject("identify(userId) needs a string");
			if (!objectOrAbsent(traits)) return this.reject("identify(userId, traits) needs an object");
			this.userId = userId;
			this.push("$identify", { properties: traits });
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	usage(sku: string, quantity: number | string, unit?: string | EventOptions, options?: EventOptions): void {
		try {
			if (typeof sku !== "string" || sku.length === 0) return this.reject("usage(sku) needs a non-empty sku");
			if (typeof quantity !== "number" && typeof quantity !== "string")
				return this.reject("usage(sku, quantity) needs a number or a decimal string");
			// usage(sku, quantity, options): the default unit, with options in the unit's place.
			if (typeof unit === "object" && unit !== null && options === undefined) {
				options = unit;
				unit = undefined;
			}
			if (unit !== undefined && typeof unit !== "string") return this.reject("usage(sku, quantity, unit) needs a string unit");
			if (!objectOrAbsent(options)) return this.reject("usage(sku, quantity, unit, options) needs an object");
			this.push("$usage", { usage: unit === undefined ? { sku, quantity } : { sku, quantity, unit } }, options);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	trackError(error: unknown, context?: Properties, options?: EventOptions): void {
		try {
			if (!objectOrAbsent(context)) return this.reject("trackError(error, context) needs an object");
			if (!objectOrAbsent(options)) return this.reject("trackError(error, context, options) needs an object");
			this.push("$error", { properties: context, performance: { statusCode: 500 }, error: errorFacts(error) }, options);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	trackPerformance(name: string, durationMs: number, properties?: Properties, options?: EventOptions): void {
		try {
			if (typeof name !== "string" || name.length === 0) return this.reject("trackPerformance(name) needs a non-empty name");
			if (typeof durationMs !== "number") return this.reject("trackPerformance(name, durationMs) needs a number");
			if (!objectOrAbsent(properties)) return this.reject("trackPerformance(name, durationMs, properties) needs an object");
			if (!objectOrAbsent(options)) return this.reject("trackPerformance(name, durationMs, properties, options) needs an object");
			this.push(name, { properties, performance: { duration: durationMs } }, options);
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

	/** Any event, its route included; the middleware records requests (and their errors) with it. */
	record(event: string, extra: Extra): void {
		try {
			this.push(event, extra);
		} catch (err) {
			this.report(err, "track", 1);
		}
	}

	/**
	 * The hot path: one id, one object, one push; a full buffer or the first event schedules work.
	 * A call's own customerId and userId win over the client's; their values are checked at send.
	 */
	private push(event: string, { properties, performance, usage, error, route }: Extra, options?: EventOptions): void {
		const timestamp = Date.now();
		this.buffer.push({
			id: uuidv7(timestamp),
			event,
			timestamp,
			userId: options?.userId ?? this.userId,
			sessionId: this.sessionId,
			customerId: options?.customerId ?? this.customerId,
			route,
			country: this.country,
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
