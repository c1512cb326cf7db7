// GET /v1/meters/:slug/query: a meter's value per window, in OpenMeter's shape, so its users feel
// at home: `{from, to, windowSize, data: [{windowStart, windowEnd, value, customerId, groupBy}]}`.
// Values are exact: sums are kept in micro-units, and `valueDecimal` carries every digit beside
// the JSON number. A deleted meter's history stays readable under its slug until the slug is reused.
import type { IRequest } from "itty-router";
import { FIELD_LIMITS } from "../event/model.js";
import { formatMicros, MICROS_PER_UNIT } from "../event/quantity.js";
import type { MeterAggregation, StoredMeter } from "../meters/model.js";
import { ApiError, invalidField, json } from "../shared/errors.js";
import { compareCodePoints } from "../shared/order.js";
import { authenticate } from "../http/auth.js";
import { countDistinct, mergeDistinct, type DistinctValues } from "../sinks/measures.js";
import { METER_ROLLUP, RowMerge, type RollupRow } from "../sinks/rollups.js";
import { livePackedRows } from "./live.js";
import { onAggregator, slugParam } from "./meters.js";
import { currentUtcMonth, parseInstant } from "./range.js";
import { windowsOf, Zone, type WindowSize } from "./windows.js";

const WINDOW_SIZES: Record<string, WindowSize> = { MINUTE: "minute", HOUR: "hour", DAY: "day", MONTH: "month" };
/** An answer holds at most this many values (windows × groups). */
export const MAX_METER_POINTS = 10_000;
const CUSTOMER = "customerId";

interface MeterQuery {
	from: number;
	to: number;
	size: WindowSize | null;
	zone: Zone;
	customerId: string | null;
	groupBy: string[];
	filter: Map<string, string>;
}

function parseQuery(url: URL, meter: StoredMeter): MeterQuery {
	const seen = new Set<string>();
	for (const key of url.searchParams.keys()) {
		const known =
			["from", "to", "windowSize", "windowTimeZone", "customerId", "groupBy"].includes(key) || /^filter\[[^\]]+\]$/.test(key);
		if (!known) throw invalidField(key, "unknown query parameter");
		if (seen.has(key)) throw invalidField(key, "given more than once");
		seen.add(key);
	}
	const params = url.searchParams;
	const [defaultFrom, defaultTo] = currentUtcMonth(new Date());
	const from = (parseInstant(params.get("from"), "from") ?? defaultFrom).getTime();
	const to = (parseInstant(params.get("to"), "to") ?? defaultTo).getTime();
	if (to <= from) throw invalidField("to", "must be after from");
	// Meter rows are kept per minute: a range that cuts a minute could not be answered exactly.
	for (const [name, ms] of [
		["from", from],
		["to", to],
	] as const)
		if (ms % 60_000 !== 0) throw invalidField(name, "must be a whole minute");
	const sizeText = params.get("windowSize");
	if (sizeText !== null && !(sizeText in WINDOW_SIZES))
		throw invalidField("windowSize", `must be one of ${Object.keys(WINDOW_SIZES).join(", ")}`);
	const customerId = params.get(CUSTOMER);
	const { min, max } = FIELD_LIMITS.customerId;
	if (customerId !== null && (customerId.length < min || customerId.length > max))
		throw invalidField(CUSTOMER, `must be ${min}-${max} characters`);
	const keys = Object.keys(meter.groupBy);
	const groupBy = params.get("groupBy")?.split(",") ?? [];
	for (const name of groupBy) {
		if (name !== CUSTOMER && !keys.includes(name))
			throw invalidField("groupBy", `${JSON.stringify(name)} is not a group of this meter (${[CUSTOMER, ...keys].join(", ")})`);
	}
	if (new Set(groupBy).size !== groupBy.length) throw invalidField("groupBy", "names a group more than once");
	const filter = new Map<string, string>();
	for (const [key, value] of params) {
		const name = /^filter\[([^\]]+)\]$/.exec(key)?.[1];
		if (name === undefined) continue;
		if (!keys.includes(name)) throw invalidField(key, `${JSON.stringify(name)} is not a group of this meter`);
		filter.set(name, value);
	}
	return {
		from,
		to,
		size: sizeText === null ? null : WINDOW_SIZES[sizeText]!,
		zone: Zone.parse(params.get("windowTimeZone"), "windowTimeZone"),
		customerId,
		groupBy,
		filter,
	};
}

export async function queryMeterRoute(request: IRequest, env: Env): Promise<Response> {
	const tenant = await authenticate(request, env, ["read"]);
	const slug = slugParam(request);
	const meter = await onAggregator(env, tenant, (aggregator) => aggregator.getMeter(tenant, slug) as Promise<StoredMeter | null>);
	if (!meter) throw new ApiError(404, `No meter ${slug}`);
	const query = parseQuery(new URL(request.url), meter);
	const windows =
		query.size === null
			? [[query.from, query.to] as [number, number]]
			: windowsOf(query.zone, query.from, query.to, query.size, MAX_METER_POINTS, "windowSize");
	const start = windows[0]![0];
	const end = windows[windows.length - 1]![1];
	const where: Record<string, string | number> = { meter: meter.id };
	if (query.customerId !== null) where.customer = query.customerId;
	const rows = await livePackedRows(env, tenant, METER_ROLLUP, iso(start), iso(end), where);

	const keys = Object.keys(meter.groupBy);
	const groups = query.groupBy.filter((name) => name !== CUSTOMER);
	const byCustomer = query.groupBy.includes(CUSTOMER);
	const cells = new Map<string, { window: number; customer: string | null; groups: Record<string, string | null>; row: RollupRow }>();
	const merging = new RowMerge(METER_ROLLUP);
	let w = 0;
	for (const row of rows.sort((a, b) => (a.minute! < b.minute! ? -1 : 1))) {
		const values = JSON.parse(row.groups as string) as (string | null)[];
		if ([...query.filter].some(([name, wanted]) => values[keys.indexOf(name)] !== wanted)) continue;
		const at = Date.parse(row.minute as string);
		while (windows[w]![1] <= at) w++;
		const customer = byCustomer ? (row.customer as string) : (query.customerId ?? null);
		const group = Object.fromEntries(groups.map((name) => [name, values[keys.indexOf(name)] ?? null]));
		const id = JSON.stringify([w, customer, group]);
		const cell = cells.get(id);
		if (cell) merging.into(cell.row, row);
		else cells.set(id, { window: w, customer, groups: group, row: { ...row } });
	}
	merging.finish();
	if (cells.size > MAX_METER_POINTS)
		throw invalidField("groupBy", `the answer would hold more than ${MAX_METER_POINTS} values; narrow the range or group by less`);
	const data = [...cells.values()]
		.sort(
			(a, b) =>
				a.window - b.window ||
				compareCodePoints(a.customer ?? "", b.customer ?? "") ||
				compareCodePoints(JSON.stringify(a.groups), JSON.stringify(b.groups)),
		)
		.map(({ window, customer, groups: group, row }) => ({
			windowStart: iso(windows[window]![0]),
			windowEnd: iso(windows[window]![1]),
			...meterValue(meter.aggregation, row),
			customerId: customer === "" ? null : customer,
			groupBy: group,
		}));
	return json({
		meter: slug,
		aggregation: meter.aggregation,
		from: iso(start),
		to: iso(end),
		windowSize: query.size === null ? null : Object.keys(WINDOW_SIZES).find((k) => WINDOW_SIZES[k] === query.size)!,
		windowTimeZone: query.zone.name,
		data,
	});
}

/** A merged cell's value as a JSON number and exact decimal text; `estimated` when a UNIQUE_COUNT bucket overflowed its exact set. */
export function meterValue(
	aggregation: MeterAggregation,
	row: RollupRow,
): { value: number | null; valueDecimal: string | null; estimated?: true } {
	const { micros, estimated } = meterMicros(aggregation, row);
	const text = micros === null ? null : formatMicros(micros);
	return { value: text === null ? null : Number(text), valueDecimal: text, ...(estimated ? { estimated: true as const } : {}) };
}

/** A merged cell's value in micro-units (a count as whole units), exactly; invoices price it as a quantity. */
export function meterMicros(aggregation: MeterAggregation, row: RollupRow): { micros: bigint | null; estimated: boolean } {
	const exact = (value: unknown) => ({ micros: value === null || value === undefined ? null : BigInt(String(value)), estimated: false });
	switch (aggregation) {
		case "COUNT":
			return exact(BigInt(row.count as number) * MICROS);
		case "SUM":
			return exact(row.value);
		case "AVG":
			return exact(averageOf(BigInt(String(row.value)), BigInt(row.count as number)));
		case "MIN":
			return exact(row.min);
		case "MAX":
			return exact(row.max);
		case "LATEST":
			return exact(row.latest);
		case "UNIQUE_COUNT": {
			const values = row.distinct_values === null ? { v: [] } : (JSON.parse(row.distinct_values as string) as DistinctValues);
			const { count, estimated } = countDistinct(mergeDistinct(values, { v: [] }));
			return { micros: BigInt(count) * MICROS, estimated };
		}
	}
}

const MICROS = BigInt(MICROS_PER_UNIT);

/** sum / count in micro-units, rounded half away from zero to the micro-unit. */
function averageOf(sum: bigint, count: bigint): bigint | null {
	if (count === 0n) return null;
	const negative = sum < 0n;
	const abs = negative ? -sum : sum;
	const rounded = (abs * 2n + count) / (2n * count);
	return negative ? -rounded : rounded;
}

function iso(ms: number): string {
	return new Date(ms).toISOString();
}
