// Tenant-defined meters: what a definition may say, its one validator, and how one event counts
// for one meter. Pure: the API validates definitions with it, the aggregator evaluates them per event.
//
// Property paths. A path is relative to the event's `properties`, keys joined by dots
// ("model.family"), optionally written with OpenMeter's "$." prefix ("$.tokens" ≡ "tokens"). The
// exact paths usage.quantity, usage.sku and usage.unit (without "$.") read the event's metered usage
// instead; "$.usage.sku" reads properties.usage.sku. Keys are non-empty, at most 128 characters,
// never __proto__, constructor or prototype, and hold no "[", "]" or "*" (JSONPath indexes and
// wildcards are not supported: arrays are never traversed); at most 5 keys deep. usage.quantity
// is already in micro-units, so it may only be a valueProperty.
import { checkKeys } from "../event/fields.js";
import { FIELD_LIMITS, FORBIDDEN_KEYS, type QueuedEvent } from "../event/model.js";
import { numberToMicros } from "../event/quantity.js";
import type { FieldIssue } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";

export const METER_AGGREGATIONS = ["SUM", "COUNT", "MIN", "MAX", "AVG", "UNIQUE_COUNT", "LATEST"] as const;
export type MeterAggregation = (typeof METER_AGGREGATIONS)[number];
export type FilterValue = string | number | boolean;

export interface MeterDefinition {
	slug: string;
	/** The event name (`event`) the meter counts. */
	eventType: string;
	aggregation: MeterAggregation;
	/** The path of the value aggregated; absent exactly for COUNT. */
	valueProperty?: string;
	/** Group name → path, at most 5. */
	groupBy: Record<string, string>;
	/** Path → the value (or one of the values) it must hold, at most 10. */
	filter: Record<string, FilterValue | FilterValue[]>;
	description?: string;
}

export interface StoredMeter extends MeterDefinition {
	id: number;
	createdAt: string;
	deletedAt: string | null;
}

export const METER_LIMITS = {
	maxSlugLength: 64,
	maxGroupBy: 5,
	maxGroupNameLength: 64,
	maxFilters: 10,
	maxFilterValues: 100,
	maxFilterStringLength: 256,
	maxPathDepth: 5,
	maxKeyLength: 128,
	/** Longer group values count as "(other)", so one odd value cannot bloat the rollup keys. */
	maxGroupValueLength: 256,
	maxUniqueLength: 256,
	maxDescriptionLength: 1000,
	/** Meters per tenant unless MAX_METERS says otherwise. */
	defaultMaxMeters: 50,
	/** A definition's JSON body; it also bounds the stored row. */
	maxBodyBytes: 64 * 1024,
} as const;

export const SLUG = /^[a-z0-9]+(?:_[a-z0-9]+)*$/;
const GROUP_NAME = /^[A-Za-z0-9_-]+$/;
const UNSUPPORTED_KEY = /[[\]*]/;
const OTHER = "(other)";
const FIELDS: ReadonlySet<string> = new Set(["slug", "eventType", "aggregation", "valueProperty", "groupBy", "filter", "description"]);
const USAGE_PATHS: Readonly<Record<string, "micros" | "sku" | "unit">> = {
	"usage.quantity": "micros",
	"usage.sku": "sku",
	"usage.unit": "unit",
};

export const SLUG_RULE = `must be 1-${METER_LIMITS.maxSlugLength} lower-case letters and digits, words joined by single underscores ("api_tokens")`;
const FILTER_VALUE_RULE = `must be a string (at most ${METER_LIMITS.maxFilterStringLength} characters), a finite number or a boolean`;

/** Validates a meter definition: an issue per bad field, or the normalized definition. */
export function validateMeter(body: unknown): { meter?: MeterDefinition; issues: FieldIssue[] } {
	if (!isPlainObject(body)) return { issues: [{ path: "body", message: "must be a JSON object" }] };
	const issues: FieldIssue[] = [];
	checkKeys(body, FIELDS, "", issues);
	const { slug, eventType, aggregation, valueProperty, description } = body;

	if (slug === undefined) issues.push({ path: "slug", message: "is required" });
	else if (typeof slug !== "string" || slug.length > METER_LIMITS.maxSlugLength || !SLUG.test(slug))
		issues.push({ path: "slug", message: SLUG_RULE });

	const event = FIELD_LIMITS.event;
	if (eventType === undefined) issues.push({ path: "eventType", message: "is required" });
	else if (typeof eventType !== "string" || eventType.length < event.min || eventType.length > event.max)
		issues.push({ path: "eventType", message: `must be a string of ${event.min}-${event.max} characters` });

	const known = METER_AGGREGATIONS.includes(aggregation as MeterAggregation);
	if (aggregation === undefined) issues.push({ path: "aggregation", message: "is required" });
	else if (!known) issues.push({ path: "aggregation", message: `must be one of ${METER_AGGREGATIONS.join(", ")}` });

	if (aggregation === "COUNT") {
		if (valueProperty !== undefined) issues.push({ path: "valueProperty", message: "must be absent for COUNT, which counts events" });
	} else if (valueProperty === undefined) {
		if (known) issues.push({ path: "valueProperty", message: `is required for ${aggregation as string}` });
	} else if (checkPath(valueProperty, "valueProperty", issues, true) && known && aggregation !== "UNIQUE_COUNT") {
		if (valueProperty === "usage.sku" || valueProperty === "usage.unit")
			issues.push({ path: "valueProperty", message: `is always a string; ${aggregation as string} needs a number` });
	}

	const groupBy = checkGroupBy(body.groupBy, issues);
	const filter = checkFilter(body.filter, issues);

	if (description !== undefined && (typeof description !== "string" || description.length > METER_LIMITS.maxDescriptionLength))
		issues.push({ path: "description", message: `must be a string of at most ${METER_LIMITS.maxDescriptionLength} characters` });

	if (issues.length > 0) return { issues };
	// Fields in one order, whatever order they were sent in: stored and shown the same way.
	const meter: MeterDefinition = {
		slug: slug as string,
		eventType: eventType as string,
		aggregation: aggregation as MeterAggregation,
		...(valueProperty !== undefined && { valueProperty: valueProperty as string }),
		groupBy,
		filter,
		...(description !== undefined && { description: description as string }),
	};
	return { meter, issues };
}

/** Whether `path` follows the path rules (module header); pushes one issue at `where` if not. */
function checkPath(path: unknown, where: string, issues: FieldIssue[], quantity: boolean): path is string {
	const fail = (message: string) => (issues.push({ path: where, message }), false);
	if (typeof path !== "string") return fail("must be a property path (a string)");
	if (path === "usage.quantity" && !quantity) return fail("usage.quantity can only be a valueProperty");
	if (path in USAGE_PATHS) return true;
	const keys = (path.startsWith("$.") ? path.slice(2) : path).split(".");
	if (keys.length > METER_LIMITS.maxPathDepth) return fail(`must be at most ${METER_LIMITS.maxPathDepth} keys deep`);
	for (const key of keys) {
		if (key === "") return fail('must be non-empty keys joined by "."');
		if (FORBIDDEN_KEYS.has(key)) return fail(`may not use the key ${key}`);
		if (key.length > METER_LIMITS.maxKeyLength) return fail(`has a key longer than ${METER_LIMITS.maxKeyLength} characters`);
		if (UNSUPPORTED_KEY.test(key)) return fail("may not use [, ] or *: array indexes and wildcards are not supported");
	}
	return true;
}

function checkGroupBy(value: unknown, issues: FieldIssue[]): Record<string, string> {
	const out: Record<string, string> = {};
	if (value === undefined) return out;
	if (!isPlainObject(value))
		return (issues.push({ path: "groupBy", message: "must be an object of group names to property paths" }), out);
	const names = Object.keys(value);
	if (names.length > METER_LIMITS.maxGroupBy)
		issues.push({ path: "groupBy", message: `must have at most ${METER_LIMITS.maxGroupBy} keys` });
	for (const name of names) {
		const where = `groupBy.${name}`;
		const path = value[name];
		if (FORBIDDEN_KEYS.has(name)) issues.push({ path: where, message: "forbidden key" });
		else if (name.length > METER_LIMITS.maxGroupNameLength || !GROUP_NAME.test(name))
			issues.push({ path: where, message: `must be named by 1-${METER_LIMITS.maxGroupNameLength} letters, digits, "_" or "-"` });
		else if (checkPath(path, where, issues, false)) out[name] = path;
	}
	return out;
}

function checkFilter(value: unknown, issues: FieldIssue[]): Record<string, FilterValue | FilterValue[]> {
	const out: Record<string, FilterValue | FilterValue[]> = {};
	if (value === undefined) return out;
	if (!isPlainObject(value)) return (issues.push({ path: "filter", message: "must be an object of property paths to values" }), out);
	const paths = Object.keys(value);
	if (paths.length > METER_LIMITS.maxFilters)
		issues.push({ path: "filter", message: `must have at most ${METER_LIMITS.maxFilters} keys` });
	for (const path of paths) {
		const where = `filter.${path}`;
		if (!checkPath(path, where, issues, false)) continue;
		const wanted = value[path];
		if (!Array.isArray(wanted)) {
			if (isFilterValue(wanted)) out[path] = wanted;
			else issues.push({ path: where, message: `${FILTER_VALUE_RULE}, or an array of them` });
		} else if (wanted.length < 1 || wanted.length > METER_LIMITS.maxFilterValues) {
			issues.push({ path: where, message: `must be an array of 1-${METER_LIMITS.maxFilterValues} values` });
		} else {
			const bad = wanted.findIndex((item) => !isFilterValue(item));
			if (bad >= 0) issues.push({ path: `${where}[${bad}]`, message: FILTER_VALUE_RULE });
			else out[path] = wanted as FilterValue[];
		}
	}
	return out;
}

function isFilterValue(value: unknown): value is FilterValue {
	if (typeof value === "string") return value.length <= METER_LIMITS.maxFilterStringLength;
	return (typeof value === "number" && Number.isFinite(value)) || typeof value === "boolean";
}

// ---- Evaluation ----

/** Reads one path of an event: a usage field or a property (undefined when absent). */
type Getter = (event: QueuedEvent) => unknown;

/**
 * A definition prepared for evaluation: its paths compiled to getters once, so readMeter does no
 * parsing per event. Build it with compileMeter; only readMeter reads the fields after `definition`.
 */
export interface CompiledMeter {
	readonly definition: MeterDefinition;
	readonly eventType: string;
	readonly aggregation: MeterAggregation;
	readonly filters: readonly { readonly get: Getter; readonly accepts: ReadonlySet<unknown> }[];
	readonly groups: readonly Getter[];
	/** The valueProperty's getter; null for COUNT. */
	readonly value: Getter | null;
	/** The value is usage.quantity, already integer micro-units. */
	readonly valueInMicros: boolean;
}

/** Prepares a validated definition for readMeter. */
export function compileMeter(definition: MeterDefinition): CompiledMeter {
	const { valueProperty } = definition;
	return {
		definition,
		eventType: definition.eventType,
		aggregation: definition.aggregation,
		filters: Object.entries(definition.filter).map(([path, wanted]) => ({
			get: getter(path),
			// A Set compares like ===, so "1" never matches 1 nor "true" true.
			accepts: new Set<unknown>(Array.isArray(wanted) ? wanted : [wanted]),
		})),
		groups: Object.values(definition.groupBy).map(getter),
		value: valueProperty === undefined ? null : getter(valueProperty),
		valueInMicros: valueProperty === "usage.quantity",
	};
}

function getter(path: string): Getter {
	const usage = USAGE_PATHS[path];
	if (usage !== undefined) return (event) => event.usage?.[usage];
	const keys = (path.startsWith("$.") ? path.slice(2) : path).split(".");
	if (keys.length === 1) {
		const key = keys[0]!;
		return (event) => own(event.properties, key);
	}
	return (event) => {
		let value: unknown = event.properties;
		for (let i = 0; i < keys.length && value !== undefined; i++) value = own(value, keys[i]!);
		return value;
	};
}

/** An own key of a plain object: inherited ones (toString, …) and array items read as absent. */
function own(value: unknown, key: string): unknown {
	return typeof value === "object" && value !== null && !Array.isArray(value) && Object.hasOwn(value, key)
		? (value as Record<string, unknown>)[key]
		: undefined;
}

/** How one event counts for one meter: its group values in groupBy order, and its value (micro-units, or the unique key). */
export type MeterReading = { groups: (string | null)[]; micros?: number; unique?: string };

/**
 * How one event counts for one meter: null = the meter does not apply (other event type, filter
 * not matched); "skip" = it applies but the value is missing or not a number (counted as
 * meter_skipped); else the reading.
 */
export function readMeter(meter: CompiledMeter, event: QueuedEvent): MeterReading | "skip" | null {
	if (event.event !== meter.eventType) return null;
	for (const filter of meter.filters) if (!filter.accepts.has(filter.get(event))) return null;
	if (meter.value === null) return { groups: groupsOf(meter, event) };
	const raw = meter.value(event);
	if (meter.aggregation === "UNIQUE_COUNT") {
		const unique = uniqueKey(raw);
		return unique === null ? "skip" : { groups: groupsOf(meter, event), unique };
	}
	let micros: number | string;
	if (meter.valueInMicros) micros = typeof raw === "number" ? raw : "absent";
	// A numeric string is not a number: JSON types are kept as sent.
	else micros = typeof raw === "number" ? numberToMicros(raw, true) : "not a number";
	return typeof micros === "number" ? { groups: groupsOf(meter, event), micros } : "skip";
}

function groupsOf(meter: CompiledMeter, event: QueuedEvent): (string | null)[] {
	return meter.groups.map((get) => groupValue(get(event)));
}

/** A string as is, a finite number or a boolean as its text ("2.5", "true"); anything else null. */
function asText(value: unknown): string | null {
	if (typeof value === "string") return value;
	if (typeof value === "number") return Number.isFinite(value) ? String(value) : null;
	return typeof value === "boolean" ? String(value) : null;
}

function groupValue(value: unknown): string | null {
	const text = asText(value);
	return text !== null && text.length > METER_LIMITS.maxGroupValueLength ? OTHER : text;
}

function uniqueKey(value: unknown): string | null {
	const text = asText(value);
	return text !== null && text.length <= METER_LIMITS.maxUniqueLength ? text : null;
}
