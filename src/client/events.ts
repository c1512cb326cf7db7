// Send-time work on tracked events: defaults, a JSON copy, redaction and validation by the edge's
// own validator, so nothing is sent that Meterline would refuse, and one bad event costs only itself.
import { validateEvent } from "../event/validate.js";
import type { FieldIssue } from "../shared/errors.js";
import type { Prepared } from "./transports.js";
import type { MeterlineEvent, Properties } from "./types.js";

/** A tracked event as the hot path leaves it: nothing copied, serialized or checked yet. */
export interface Pending {
	id: string;
	event: string;
	timestamp: number;
	userId: string | undefined;
	sessionId: string | undefined;
	customerId: string | undefined;
	route: string | undefined;
	country: string | undefined;
	properties: Properties | undefined;
	performance: MeterlineEvent["performance"];
	usage: MeterlineEvent["usage"];
	/** For "$error": what the error said, turned into properties at send time. */
	error: { name: string; message: string; stack: string | undefined } | undefined;
}

/** An event that failed validation; `issues` name each bad field as POST /v1/events would. */
export class InvalidEventError extends Error {
	override name = "MeterlineInvalidEvent";

	constructor(
		readonly event: string,
		readonly issues: { path: string; message: string }[],
	) {
		super(`Invalid event "${event}": ${issues.map((issue) => `${issue.path} ${issue.message}`).join("; ")}`);
	}
}

export interface PrepareConfig {
	defaults: Properties | undefined;
	/** Lower-cased property keys to redact. */
	redact: ReadonlySet<string>;
}

/** The event in its wire and queue forms, or an InvalidEventError. */
export async function prepare(pending: Pending, config: PrepareConfig, now: number): Promise<Prepared> {
	const { id, event, timestamp, userId, sessionId, customerId, route, country, performance, usage, error } = pending;
	let properties = pending.properties;
	if (config.defaults) properties = { ...config.defaults, ...properties };
	if (error) properties = { ...properties, name: error.name, message: error.message, stackHash: await stackHash(error.stack) };

	const wire: MeterlineEvent = { id, event, timestamp };
	if (userId !== undefined) wire.userId = userId;
	if (sessionId !== undefined) wire.sessionId = sessionId;
	if (customerId !== undefined) wire.customerId = customerId;
	if (route !== undefined) wire.route = route;
	if (country !== undefined) wire.country = country;
	// A JSON copy: the caller's objects are never touched, and what is validated is what is sent.
	if (properties !== undefined) wire.properties = JSON.parse(JSON.stringify(properties)) as Properties;
	if (performance !== undefined) wire.performance = { ...performance };
	if (usage !== undefined) wire.usage = usage.unit === undefined ? { sku: usage.sku, quantity: usage.quantity } : { ...usage };

	const issues: FieldIssue[] = [];
	// Redacts wire.properties in place, with the same walk the edge applies for REDACT_KEYS.
	const queued = validateEvent(wire, now, issues, config.redact);
	if (!queued)
		throw new InvalidEventError(
			event,
			issues.map(({ path, message }) => ({ path, message })),
		);
	return { wire, queued };
}

/**
 * The first 16 hex digits of SHA-256 over the stack's frames (the "at …" lines), so one bug
 * groups under one hash whatever its message says. Null when the error carried no stack.
 */
export async function stackHash(stack: string | undefined): Promise<string | null> {
	if (stack === undefined) return null;
	const frames = stack.split("\n").filter((line) => /^\s*at /.test(line));
	const text = frames.length > 0 ? frames.map((line) => line.trim()).join("\n") : stack;
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
	let hex = "";
	for (let i = 0; i < 8; i++) hex += digest[i]!.toString(16).padStart(2, "0");
	return hex;
}

/** Name, message and stack of anything thrown; read now, while the error is as it was. */
export function errorFacts(error: unknown): NonNullable<Pending["error"]> {
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
