// Merging many stored texts at once (TextMerge, what a flush and a live read use) gives exactly
// the text of one sketch over every value, as merging them pair by pair does, whatever the order;
// "no data" (null) changes nothing, and a lone text comes back as it was stored.
import { describe, expect, it } from "vitest";
import { mulberry32 } from "../helpers";
import { mergeMeasureText, TextMerge, type TextMeasure } from "../../src/sinks/measures";
import { addValue, emptySketch, encodeUnique } from "../../src/shared/hll";
import { addDuration, emptyDurations, encodeDurations } from "../../src/shared/quantiles";

/** `parts` texts of one kind over disjoint slices of `values`, and the text of one over them all. */
function textsOf(kind: TextMeasure, values: string[], parts: number): { texts: string[]; whole: string } {
	const encode = (slice: string[]) => {
		if (kind === "users") {
			const sketch = emptySketch();
			for (const value of slice) addValue(sketch, value);
			return encodeUnique(sketch);
		}
		if (kind === "durations") {
			const sketch = emptyDurations();
			for (const value of slice) addDuration(sketch, Number(value));
			return encodeDurations(sketch);
		}
		return JSON.stringify({ v: [...new Set(slice)].sort() });
	};
	const size = Math.ceil(values.length / parts);
	const texts = Array.from({ length: parts }, (_, i) => encode(values.slice(i * size, (i + 1) * size)));
	return { texts, whole: encode(values) };
}

function valuesFor(kind: TextMeasure, n: number): string[] {
	const random = mulberry32(7);
	return Array.from({ length: n }, (_, i) => (kind === "durations" ? String(0.5 + Math.floor(random() * 100_000) / 10) : `user-${i}`));
}

describe("TextMerge", () => {
	it.each([
		["users", 500],
		["users", 40],
		["durations", 3_000],
		["distinct", 300],
	] as const)("merges %s texts (%i values) into exactly the text of one over them all", (kind, n) => {
		const { texts, whole } = textsOf(kind, valuesFor(kind, n), 12);
		const merge = new TextMerge(kind, null);
		for (const text of [...texts].reverse()) merge.add(text);
		expect(merge.text()).toBe(whole);
		expect(texts.reduce<string | null>((a, b) => mergeMeasureText(kind, a, b), null)).toBe(whole);
	});

	it("keeps a lone text as it was, ignores null, and gives null for no data", () => {
		const lone = new TextMerge("users", null);
		lone.add(null);
		// Spaced as no encoder writes it: re-encoding would drop the spaces.
		lone.add('{ "e": [5] }');
		lone.add(null);
		expect(lone.text()).toBe('{ "e": [5] }');
		expect(new TextMerge("durations", null).text()).toBeNull();
	});
});
