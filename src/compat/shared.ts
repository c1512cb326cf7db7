// What the Segment- and PostHog-compatible APIs share: their events become Meterline events and go
// through the one validator, with the same redaction, rate limit and delivery as POST /v1/events.
import { isPlainObject } from "../events/schema";
import { parseIsoInstant } from "../events/time";

/** A Meterline event built from a foreign message, before validation. */
export type RawEvent = Record<string, unknown>;

/**
 * Moves a `properties.usage` object ({sku, quantity, unit?}) to the event's metered usage, the
 * rule both compatible APIs share. Properties are copied, never mutated in place.
 */
export function withUsage(event: RawEvent, properties: unknown): RawEvent {
	if (!isPlainObject(properties)) return properties === undefined ? event : { ...event, properties };
	const { usage, ...rest } = properties;
	const out: RawEvent = { ...event, properties: rest };
	if (usage !== undefined) out.usage = usage;
	return out;
}

/**
 * Segment's and PostHog's clock-skew correction: a client's clock may be off, so the event time is
 * moved by the gap between when the server received the batch and when the client says it sent it.
 * A value that cannot be read is passed on unchanged for the validator to name.
 */
export function correctClockSkew(timestamp: unknown, sentAt: unknown, receivedAt: number): unknown {
	if (timestamp === undefined || timestamp === null) return undefined;
	const at = typeof timestamp === "string" ? parseIsoInstant(timestamp) : NaN;
	const sent = typeof sentAt === "string" ? parseIsoInstant(sentAt) : NaN;
	if (Number.isNaN(at) || Number.isNaN(sent)) return timestamp;
	return at + (receivedAt - sent);
}

/** A foreign id that is a number becomes its string; anything else is left for the validator. */
export function asId(value: unknown): unknown {
	return typeof value === "number" && Number.isFinite(value) ? String(value) : value;
}
