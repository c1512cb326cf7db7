// Cloudflare list prices (Workers Paid, beyond the included amounts) and the arithmetic that turns
// the pipeline's own operation counts into a cost per million events.

export interface Price {
	/** US dollars per `per` units. */
	usd: number;
	per: number;
	unit: string;
	source: string;
}

/** One table of every price the benchmark uses, each with the page it comes from. */
export const PRICES = {
	workerRequests: { usd: 0.3, per: 1e6, unit: "Worker requests", source: "https://developers.cloudflare.com/workers/platform/pricing/" },
	queueOperations: {
		usd: 0.4,
		per: 1e6,
		unit: "queue operations (64 KB each; write, read and delete are one each)",
		source: "https://developers.cloudflare.com/queues/platform/pricing/",
	},
	durableObjectRequests: {
		usd: 0.15,
		per: 1e6,
		unit: "Durable Object requests (RPC calls and alarms)",
		source: "https://developers.cloudflare.com/durable-objects/platform/pricing/",
	},
	durableObjectRowsWritten: {
		usd: 1.0,
		per: 1e6,
		unit: "Durable Object SQLite rows written",
		source: "https://developers.cloudflare.com/durable-objects/platform/pricing/",
	},
	d1RowsWritten: { usd: 1.0, per: 1e6, unit: "D1 rows written", source: "https://developers.cloudflare.com/d1/platform/pricing/" },
	analyticsDataPoints: {
		usd: 0.25,
		per: 1e6,
		unit: "Analytics Engine data points written",
		source: "https://developers.cloudflare.com/analytics/analytics-engine/pricing/",
	},
	durableObjectStorage: {
		usd: 0.2,
		per: 1,
		unit: "GB-months of Durable Object SQLite storage",
		source: "https://developers.cloudflare.com/durable-objects/platform/pricing/",
	},
	workerCpu: {
		usd: 0.02,
		per: 1e6,
		unit: "Worker CPU milliseconds (Standard usage model)",
		source: "https://developers.cloudflare.com/workers/platform/pricing/",
	},
	durableObjectDuration: {
		usd: 12.5,
		per: 1e6,
		unit: "GB-seconds of Durable Object duration (128 MB per object)",
		source: "https://developers.cloudflare.com/durable-objects/platform/pricing/",
	},
	r2ClassA: {
		usd: 4.5,
		per: 1e6,
		unit: "R2 Class A operations (one PutObject per archive part)",
		source: "https://developers.cloudflare.com/r2/pricing/",
	},
	r2Storage: {
		usd: 0.015,
		per: 1,
		unit: "GB-months of R2 Standard storage (the archive's Parquet parts, one month kept)",
		source: "https://developers.cloudflare.com/r2/pricing/",
	},
} as const satisfies Record<string, Price>;

/**
 * The Durable Object duration model. An object is billed for wall-clock time while it runs an RPC
 * or an alarm, and not while idle (an object without WebSockets that is idle may hibernate, and
 * idle objects that may hibernate are not billed; Cloudflare's Durable Objects pricing page). So:
 * its CPU time (the benchmark counts all of workerd's CPU here, the producer's and consumer's too:
 * an upper bound) plus its waits on D1, one round trip per flush, assumed at D1_ROUND_TRIP_MS
 * (local D1 runs in-process, so the wait cannot be measured here), at 128 MB.
 */
export const DURATION_MODEL = { memoryGb: 0.128, d1RoundTripMs: 50 } as const;

export function durableObjectGbSeconds(cpuMs: number, d1RoundTrips: number): number {
	return ((cpuMs + d1RoundTrips * DURATION_MODEL.d1RoundTripMs) / 1000) * DURATION_MODEL.memoryGb;
}

export type CostLine = keyof typeof PRICES;

/** List prices per million events of the hosted products Meterline is held against. */
export const PEER_PRICES_PER_MILLION_EVENTS = {
	"PostHog (product analytics, first paid tier → high volume)": { usdFrom: 50, usdTo: 9, source: "https://posthog.com/pricing" },
	"Mixpanel (Growth, per million events)": { usdFrom: 280, usdTo: 280, source: "https://mixpanel.com/pricing/" },
} as const;

/** Platform operations counted for some number of events. */
export interface OperationCounts {
	events: number;
	workerRequests: number;
	queueMessages: number;
	/** 64 KB chunks written; each is read and deleted once more on delivery. */
	queueChunks: number;
	aggregatorRpcs: number;
	alarms: number;
	sqliteRowsWritten: number;
	d1RowsWritten: number;
	analyticsPoints: number;
	/** GB-months of Durable Object storage the events occupy (remembered ids stay for the dedupe window). */
	storageGbMonths?: number;
	/** Milliseconds of CPU the events took, measured (all of workerd's threads: an upper bound for the Workers). */
	cpuMs?: number;
	/** GB-seconds of Durable Object duration, from DURATION_MODEL. */
	durableObjectGbSeconds?: number;
	/** Archive parts written to R2 (one Class A PutObject each), from the archive measurement's part model. */
	archiveParts?: number;
	/** GB-months of R2 storage the events' Parquet parts occupy (one month kept). */
	archiveGbMonths?: number;
}

export interface CostBreakdown {
	perMillionEvents: Record<CostLine, number>;
	totalPerMillionEvents: number;
	dominant: CostLine;
}

/** Prices operation counts at list prices, scaled to one million events. */
export function costPerMillionEvents(counts: OperationCounts): CostBreakdown {
	const scale = 1e6 / counts.events;
	const units: Record<CostLine, number> = {
		workerRequests: counts.workerRequests,
		// Every chunk is written, read and deleted: three operations.
		queueOperations: counts.queueChunks * 3,
		durableObjectRequests: counts.aggregatorRpcs + counts.alarms,
		durableObjectRowsWritten: counts.sqliteRowsWritten,
		d1RowsWritten: counts.d1RowsWritten,
		analyticsDataPoints: counts.analyticsPoints,
		durableObjectStorage: counts.storageGbMonths ?? 0,
		workerCpu: counts.cpuMs ?? 0,
		durableObjectDuration: counts.durableObjectGbSeconds ?? 0,
		r2ClassA: counts.archiveParts ?? 0,
		r2Storage: counts.archiveGbMonths ?? 0,
	};
	const perMillionEvents = {} as Record<CostLine, number>;
	let total = 0;
	let dominant: CostLine = "workerRequests";
	for (const line of Object.keys(PRICES) as CostLine[]) {
		const price = PRICES[line];
		perMillionEvents[line] = (units[line] * scale * price.usd) / price.per;
		total += perMillionEvents[line];
		if (perMillionEvents[line] > perMillionEvents[dominant]) dominant = line;
	}
	return { perMillionEvents, totalPerMillionEvents: total, dominant };
}
