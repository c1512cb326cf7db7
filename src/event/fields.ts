// The field checks the edge validator and the consumer's guard share, read off FIELD_LIMITS.
import type { FieldIssue } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";
import { COUNTRY, FIELD_LIMITS, FORBIDDEN_KEYS, PERFORMANCE_FIELDS, type QueuedEvent, type StringField } from "./model.js";

export function checkKeys(object: Record<string, unknown>, allowed: ReadonlySet<string>, prefix: string, issues: FieldIssue[]): void {
	for (const key of Object.keys(object)) {
		if (FORBIDDEN_KEYS.has(key)) issues.push({ path: prefix + key, message: "forbidden key" });
		else if (!allowed.has(key)) issues.push({ path: prefix + key, message: "unknown field" });
	}
}

/** The string, or undefined with an issue when it is not one or its length is out of FIELD_LIMITS. */
export function checkString(value: unknown, field: StringField, issues: FieldIssue[]): string | undefined {
	const { min, max } = FIELD_LIMITS[field];
	if (typeof value !== "string") issues.push({ path: field, message: "must be a string" });
	else if (value.length < min || value.length > max) issues.push({ path: field, message: `must be ${min}-${max} characters` });
	else return value;
	return undefined;
}

/** A country code, or undefined with an issue. */
export function checkCountry(value: unknown, issues: FieldIssue[]): string | undefined {
	if (typeof value === "string" && COUNTRY.test(value)) return value;
	issues.push({ path: "country", message: 'must be an ISO 3166-1 alpha-2 code of two capital letters, such as "DE"' });
	return undefined;
}

/** `{duration?, statusCode?}` within FIELD_LIMITS, or undefined with an issue per bad field. */
export function checkPerformance(value: unknown, issues: FieldIssue[]): QueuedEvent["performance"] {
	if (!isPlainObject(value)) {
		issues.push({ path: "performance", message: "must be an object" });
		return undefined;
	}
	checkKeys(value, PERFORMANCE_FIELDS, "performance.", issues);
	const out: NonNullable<QueuedEvent["performance"]> = {};
	const { duration, statusCode } = value;
	const d = FIELD_LIMITS["performance.duration"];
	const s = FIELD_LIMITS["performance.statusCode"];
	if (duration !== undefined) {
		if (typeof duration !== "number" || !Number.isFinite(duration) || duration < d.min || duration > d.max) {
			issues.push({ path: "performance.duration", message: `must be a number of milliseconds from ${d.min} to ${d.max}` });
		} else out.duration = duration;
	}
	if (statusCode !== undefined) {
		if (!Number.isInteger(statusCode) || (statusCode as number) < s.min || (statusCode as number) > s.max) {
			issues.push({ path: "performance.statusCode", message: `must be an integer ${s.min}-${s.max}` });
		} else out.statusCode = statusCode as number;
	}
	return out;
}
