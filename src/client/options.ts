// The client's options, read once: whole numbers clamped to their range, defaults filled in, and
// nothing a caller passes can make the client throw.
import { EVENT_LIMITS } from "../event/model.js";
import type { PrepareConfig } from "./events.js";
import type { RetryPolicy } from "./retry.js";
import type { AnalyticsOptions, ErrorInfo } from "./types.js";

const DEFAULTS = { batchSize: 20, flushInterval: 1000, maxQueue: 1000, retries: 3, retryDelay: 100, maxRetryDelay: 10_000 };

export interface ResolvedOptions {
	batchSize: number;
	flushInterval: number;
	maxQueue: number;
	onError: (error: unknown, info: ErrorInfo) => void;
	userId: string | undefined;
	sessionId: string | undefined;
	customerId: string | undefined;
	country: string | undefined;
	config: PrepareConfig;
	policy: RetryPolicy;
}

/** A whole number within [min, max], or the default. */
function option(value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
	return typeof value === "number" && Number.isFinite(value) ? Math.min(max, Math.max(min, Math.floor(value))) : fallback;
}

export function defaultOnError(error: unknown, info: ErrorInfo): void {
	console.error(`meterline: ${info.stage} failed (${info.events} event${info.events === 1 ? "" : "s"})`, error);
}

/** The options as the client uses them; a redaction list that cannot be read is reported to onError and ignored. */
export function resolveOptions(options: AnalyticsOptions): ResolvedOptions {
	const onError = typeof options.onError === "function" ? options.onError : defaultOnError;
	let redact: ReadonlySet<string> = new Set();
	try {
		redact = new Set((options.redact ?? []).map((key) => String(key).toLowerCase()));
	} catch (err) {
		try {
			onError(err, { stage: "track", events: 0 });
		} catch {
			// The hook's own failure must not reach the caller either.
		}
	}
	const defaults = options.defaults !== null && typeof options.defaults === "object" ? options.defaults : undefined;
	return {
		batchSize: option(options.batchSize, DEFAULTS.batchSize, 1, EVENT_LIMITS.maxEventsPerBatch),
		// Timers overflow past 2^31 - 1 ms and would fire at once.
		flushInterval: option(options.flushInterval, DEFAULTS.flushInterval, 0, 2_147_483_647),
		maxQueue: option(options.maxQueue, DEFAULTS.maxQueue, 1),
		onError,
		userId: typeof options.userId === "string" ? options.userId : undefined,
		sessionId: typeof options.sessionId === "string" ? options.sessionId : undefined,
		customerId: typeof options.customerId === "string" ? options.customerId : undefined,
		country: typeof options.country === "string" ? options.country : undefined,
		config: { defaults, redact },
		policy: {
			retries: option(options.retries, DEFAULTS.retries, 0),
			retryDelay: option(options.retryDelay, DEFAULTS.retryDelay, 0),
			maxRetryDelay: option(options.maxRetryDelay, DEFAULTS.maxRetryDelay, 0),
		},
	};
}
