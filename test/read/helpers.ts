// Seeds the real D1 rollup tables directly, as flushed aggregators would have left them.
import { env } from "cloudflare:workers";

export interface UsageRow {
	sku: string;
	unit?: string;
	/** ISO start of the UTC hour. */
	hour: string;
	/** Integer micro-units, as decimal text so sums past 2^53 can be seeded. */
	micros: string;
	events?: number;
}

export async function seedUsage(tenant: string, rows: UsageRow[]): Promise<void> {
	await env.DB.batch(
		rows.map((row) =>
			env.DB.prepare(
				"INSERT INTO usage_rollups (tenant, sku, unit, hour, micros_hi, micros_lo, events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			).bind(
				tenant,
				row.sku,
				row.unit ?? "unit",
				row.hour,
				Number(BigInt(row.micros) / 10n ** 12n),
				Number(BigInt(row.micros) % 10n ** 12n),
				row.events ?? 1,
			),
		),
	);
}

export interface EventRow {
	event: string;
	/** ISO start of the UTC minute. */
	minute: string;
	count: number;
	errors?: number;
	/** Durations in the row; omitted means none were reported. */
	durations?: { count: number; sum: number; min: number; max: number };
}

export async function seedEvents(tenant: string, rows: EventRow[]): Promise<void> {
	await env.DB.batch(
		rows.map((row) =>
			env.DB.prepare(
				`INSERT INTO event_rollups (tenant, event, minute, count, errors, duration_count, duration_sum, duration_min, duration_max)
				 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`,
			).bind(
				tenant,
				row.event,
				row.minute,
				row.count,
				row.errors ?? 0,
				row.durations?.count ?? 0,
				row.durations?.sum ?? 0,
				row.durations?.min ?? null,
				row.durations?.max ?? null,
			),
		),
	);
}

export interface UsageReport {
	tenant: string;
	from: string;
	to: string;
	granularity: string;
	items: { sku: string; unit: string; period: string; quantity: number; quantityDecimal: string; events: number }[];
	adjustments: {
		sku: string;
		unit: string;
		period: string;
		adjustmentFor: string;
		quantity: number;
		quantityDecimal: string;
		events: number;
	}[];
}

export interface StatsReport {
	tenant: string;
	from: string;
	to: string;
	granularity: string;
	items: {
		event: string;
		period: string;
		count: number;
		errors: number;
		duration: { count: number; sum: number; min: number | null; max: number | null };
	}[];
}
