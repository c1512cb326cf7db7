// Folding events into meter rows: per meter, customer, group values and minute, the measures the
// meter's aggregation needs (a count, an exact sum of micro-units, min, max, the latest value, or
// the distinct values), summed in memory so each key costs one row of the slice's packed chunk.
import type { QueuedEvent } from "../event/model.js";
import { readMeter, type MeterAggregation, type MeterReading } from "../meters/model.js";
import { DISTINCT_EXACT_LIMIT, type DistinctValues } from "../sinks/measures.js";
import type { RollupRow } from "../sinks/rollups.js";
import { addValue, emptySketch, encodeUnique } from "../shared/hll.js";
import type { ActiveMeter } from "./meter-definitions.js";
import { OTHER, type MeterGroups } from "./meter-groups.js";

export interface MeterFold {
	rows: Map<string, RollupRow>;
	skipped: number;
	other: number;
}

/** A row being folded: its distinct values as a Set until the end. */
type FoldingRow = RollupRow & { values?: Set<string> };

export function foldMeters(
	events: QueuedEvent[],
	meters: readonly ActiveMeter[],
	groups: MeterGroups,
	minuteOf: (ms: number) => string,
): MeterFold {
	const rows = new Map<string, FoldingRow>();
	let skipped = 0;
	let other = 0;
	if (meters.length === 0) return { rows, skipped, other };
	for (const event of events) {
		const customer = event.customerId ?? "";
		const minute = minuteOf(event.timestamp);
		for (const { id, meter } of meters) {
			const reading = readMeter(meter, event);
			if (reading === null) continue;
			if (reading === "skip") {
				skipped++;
				continue;
			}
			let tuple = JSON.stringify(reading.groups);
			if (meter.groups.length > 0 && !groups.admit(id, event.timestamp, tuple)) {
				tuple = JSON.stringify(reading.groups.map(() => OTHER));
				other++;
			}
			// The customer's length is spelled out and the minute has a fixed length, so the key is unambiguous.
			const key = `${id}:${customer.length}:${customer}${tuple}${minute}`;
			let row = rows.get(key);
			if (!row) rows.set(key, (row = emptyRow(id, customer, tuple, minute)));
			add(row, meter.aggregation, reading, event.timestamp);
		}
	}
	for (const row of rows.values()) {
		if (row.values) {
			row.distinct_values = JSON.stringify(distinctOf(row.values));
			delete row.values;
		}
	}
	return { rows, skipped, other };
}

function emptyRow(meter: number, customer: string, groups: string, minute: string): FoldingRow {
	return {
		meter,
		customer,
		groups,
		minute,
		count: 0,
		value: 0,
		min: null,
		max: null,
		latest_at: null,
		latest: null,
		distinct_values: null,
	};
}

function add(row: FoldingRow, aggregation: MeterAggregation, reading: MeterReading, at: number): void {
	(row.count as number)++;
	if (aggregation === "COUNT") return;
	if (aggregation === "UNIQUE_COUNT") {
		(row.values ??= new Set()).add(reading.unique!);
		return;
	}
	const micros = reading.micros!;
	// Summed as a number while that is exact, then as BigInt text, as usage is.
	const sum = typeof row.value === "number" ? row.value + micros : NaN;
	row.value = Number.isSafeInteger(sum) ? sum : (BigInt(row.value!) + BigInt(micros)).toString();
	row.min = row.min === null ? micros : Math.min(row.min as number, micros);
	row.max = row.max === null ? micros : Math.max(row.max as number, micros);
	if (row.latest_at === null || at > (row.latest_at as number) || (at === row.latest_at && micros > (row.latest as number))) {
		row.latest_at = at;
		row.latest = micros;
	}
}

function distinctOf(values: Set<string>): DistinctValues {
	if (values.size <= DISTINCT_EXACT_LIMIT) return { v: [...values].sort() };
	const sketch = emptySketch();
	for (const value of values) addValue(sketch, value);
	return { h: encodeUnique(sketch) };
}
