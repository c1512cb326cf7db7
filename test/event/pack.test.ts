// Unit tests of the queue packer with small limits: message splitting and sendBatch grouping.
import { describe, expect, it } from "vitest";
import type { QueuedEvent } from "../../src/event/model";
import { groupIntoBatches, packMessages, QUEUE_LIMITS, type QueueLimits } from "../../src/event/pack";
import { jsonBytes } from "../helpers";

const TENANT = "t-pack";

function limits(overrides: Partial<QueueLimits>): QueueLimits {
	return { ...QUEUE_LIMITS, ...overrides };
}

/** n events of identical JSON size: ids e0…e9, and a payload of `pad` copies of `ch`. */
function events(n: number, pad = 10, ch = "x"): QueuedEvent[] {
	return Array.from({ length: n }, (_, i) => ({
		id: `e${i}`,
		event: "p",
		timestamp: 1_700_000_000_000,
		properties: { s: ch.repeat(pad) },
	}));
}

const idsOf = (messages: { body: { events: QueuedEvent[] } }[]) => messages.map((message) => message.body.events.map((event) => event.id));

describe("packMessages", () => {
	it("returns no messages for no events", () => {
		expect(packMessages(TENANT, [])).toEqual([]);
	});

	it("puts events that fit into one v1 message, in order", () => {
		const input = events(3);
		const messages = packMessages(TENANT, input);
		expect(messages.map((message) => message.body)).toEqual([{ v: 1, tenant: TENANT, events: input }]);
	});

	it("starts a new message when the next event would pass messageBytes", () => {
		const input = events(6);
		const two = jsonBytes({ v: 1, tenant: TENANT, events: input.slice(0, 2) });
		const messages = packMessages(TENANT, input, limits({ messageBytes: two + 5 }));
		expect(idsOf(messages)).toEqual([
			["e0", "e1"],
			["e2", "e3"],
			["e4", "e5"],
		]);
		for (const message of messages) expect(jsonBytes(message.body)).toBeLessThanOrEqual(two + 5);
	});

	it("fills a message whose JSON is exactly messageBytes", () => {
		const input = events(6);
		const two = jsonBytes({ v: 1, tenant: TENANT, events: input.slice(0, 2) });
		expect(idsOf(packMessages(TENANT, input, limits({ messageBytes: two })))).toEqual([
			["e0", "e1"],
			["e2", "e3"],
			["e4", "e5"],
		]);
	});

	it("measures 4-byte characters at their UTF-8 size", () => {
		const input = events(6, 50, "😀");
		const messageBytes = jsonBytes({ v: 1, tenant: TENANT, events: input.slice(0, 2) });
		const messages = packMessages(TENANT, input, limits({ messageBytes }));
		for (const message of messages) expect(jsonBytes(message.body)).toBeLessThanOrEqual(messageBytes);
		expect(idsOf(messages).flat()).toEqual(input.map((event) => event.id));
	});

	it("gives every message its body's JSON text and that text's UTF-8 bytes, whole or split", () => {
		const input = events(6, 50, "é😀");
		const whole = packMessages(TENANT, input);
		const split = packMessages(TENANT, input, limits({ messageBytes: jsonBytes({ v: 1, tenant: TENANT, events: input.slice(0, 2) }) }));
		expect(whole).toHaveLength(1);
		expect(split).toHaveLength(3);
		for (const message of [...whole, ...split]) {
			expect(message.text).toBe(JSON.stringify(message.body));
			expect(message.bytes).toBe(new TextEncoder().encode(message.text).byteLength);
		}
	});

	it("sends an event larger than messageBytes alone instead of dropping it", () => {
		const input = [
			...events(1),
			...events(1, 500).map((event) => ({ ...event, id: "big" })),
			...events(1).map((event) => ({ ...event, id: "after" })),
		];
		const messages = packMessages(TENANT, input, limits({ messageBytes: 300 }));
		expect(idsOf(messages)).toEqual([["e0"], ["big"], ["after"]]);
	});
});

describe("groupIntoBatches", () => {
	const sized = (...sizes: number[]) => sizes.map((bytes, i) => ({ id: i, bytes }));
	const idsOfBatches = (batches: { id: number }[][]) => batches.map((batch) => batch.map((message) => message.id));

	it("returns no batches for no messages", () => {
		expect(groupIntoBatches([], limits({ batchMessages: 3, batchBytes: 100 }))).toEqual([]);
	});

	it("closes a batch at batchMessages", () => {
		const batches = groupIntoBatches(sized(1, 1, 1, 1, 1, 1, 1), limits({ batchMessages: 3, batchBytes: 100 }));
		expect(idsOfBatches(batches)).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
	});

	it("fills a batch up to exactly batchBytes", () => {
		const batches = groupIntoBatches(sized(60, 40, 1), limits({ batchMessages: 3, batchBytes: 100 }));
		expect(idsOfBatches(batches)).toEqual([[0, 1], [2]]);
	});

	it("closes a batch before a message that would pass batchBytes", () => {
		const batches = groupIntoBatches(sized(60, 41, 59), limits({ batchMessages: 3, batchBytes: 100 }));
		expect(idsOfBatches(batches)).toEqual([[0], [1, 2]]);
	});

	it("sends a message larger than batchBytes in a batch of its own", () => {
		const batches = groupIntoBatches(sized(10, 150, 10), limits({ batchMessages: 3, batchBytes: 100 }));
		expect(idsOfBatches(batches)).toEqual([[0], [1], [2]]);
	});
});
