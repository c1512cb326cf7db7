// wrangler.toml's queue consumer settings against the code that relies on them: the events
// consumer's retry budget (EVENTS_MAX_RETRIES) and the dead-letter consumer's max_retries.
import { describe, expect, it } from "vitest";
import wranglerToml from "../../wrangler.toml?raw";
import { DEAD_LETTER_MAX_RETRIES } from "../../src/consumer/dead-letters";
import { EVENTS_MAX_RETRIES } from "../../src/consumer/events-consumer";

/** Each table's `key = value` lines by header, strings unquoted: enough for wrangler.toml's flat tables. */
function tables(toml: string): { header: string; values: Record<string, string> }[] {
	const found: { header: string; values: Record<string, string> }[] = [];
	for (const line of toml.split("\n")) {
		const header = /^\[\[?([^\]]+)\]\]?\s*$/.exec(line.trim());
		const pair = /^(\w+)\s*=\s*(.+?)\s*$/.exec(line.trim());
		if (header) found.push({ header: header[1]!, values: {} });
		else if (pair && found.length > 0) found[found.length - 1]!.values[pair[1]!] = pair[2]!.replace(/^"(.*)"$/, "$1");
	}
	return found;
}

function consumerOf(queue: string): Record<string, string> {
	const consumers = tables(wranglerToml).filter((table) => table.header === "queues.consumers" && table.values.queue === queue);
	expect(consumers).toHaveLength(1);
	return consumers[0]!.values;
}

describe("wrangler.toml", () => {
	it("gives the events consumer max_retries = EVENTS_MAX_RETRIES (25) and the dead-letter queue", () => {
		expect(consumerOf("meterline-events")).toEqual({
			queue: "meterline-events",
			max_batch_size: "100",
			max_batch_timeout: "1",
			max_retries: String(EVENTS_MAX_RETRIES),
			retry_delay: "5",
			dead_letter_queue: "meterline-dead-letters",
		});
		expect(EVENTS_MAX_RETRIES).toBe(25);
	});

	it("gives the dead-letter consumer max_retries = DEAD_LETTER_MAX_RETRIES (10), in [vars] too, and no queue behind it", () => {
		expect(consumerOf("meterline-dead-letters")).toEqual({
			queue: "meterline-dead-letters",
			max_batch_size: "100",
			max_batch_timeout: "5",
			max_retries: String(DEAD_LETTER_MAX_RETRIES),
			retry_delay: "30",
		});
		expect(tables(wranglerToml).find((table) => table.header === "vars")!.values.DEAD_LETTER_MAX_RETRIES).toBe(
			String(DEAD_LETTER_MAX_RETRIES),
		);
		expect(DEAD_LETTER_MAX_RETRIES).toBe(10);
	});
});
