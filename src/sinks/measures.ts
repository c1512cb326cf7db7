// The measures only JavaScript can merge, each stored as text: a duration sketch (DDSketch, for
// percentiles), a unique-count sketch (HyperLogLog, for active users), and the distinct values of
// a UNIQUE_COUNT meter. Every merge is commutative and associative, so rows merge in any order.
import { addValue, countUnique, decodeUnique, emptySketch, encodeUnique, mergeSketch } from "../shared/hll.js";
import { decodeDurations, emptyDurations, encodeDurations, mergeDurations } from "../shared/quantiles.js";

export type TextMeasure = "durations" | "users" | "distinct";

/**
 * A meter bucket remembers this many distinct values exactly. Past it, the values are kept as a
 * HyperLogLog instead, and every answer that includes the bucket says it is an estimate: a row
 * stays far below D1's 2 MB row limit (10,000 values of ≤ 256 characters).
 */
export const DISTINCT_EXACT_LIMIT = 10_000;

/** A UNIQUE_COUNT meter's values: the sorted distinct values, or once there were too many, a sketch of them. */
export type DistinctValues = { v: string[] } | { h: string };

export function emptyText(kind: TextMeasure): string {
	if (kind === "durations") return encodeDurations(emptyDurations());
	if (kind === "users") return encodeUnique(emptySketch());
	return JSON.stringify({ v: [] });
}

/** How one kind of text measure is decoded, merged and encoded. */
interface Codec<T> {
	decode(text: string): T;
	/** Merges `b` into `a` and returns the result (which may be `a`, changed). */
	merge(a: T, b: T): T;
	encode(value: T): string;
}

const CODECS: { [K in TextMeasure]: Codec<unknown> } = {
	durations: codec({ decode: decodeDurations, merge: (a, b) => (mergeDurations(a, b), a), encode: encodeDurations }),
	users: codec({ decode: decodeUnique, merge: (a, b) => (mergeSketch(a, b), a), encode: encodeUnique }),
	distinct: codec({
		decode: (text) => JSON.parse(text) as DistinctValues,
		merge: mergeDistinct,
		encode: (value) => JSON.stringify(value),
	}),
};

function codec<T>(c: Codec<T>): Codec<unknown> {
	return c as Codec<unknown>;
}

/**
 * Merges many stored texts of one kind, decoding each once and encoding the result once: merging
 * them pair by pair would decode and re-encode the growing sketch for every text. null is "no data".
 */
export class TextMerge {
	private readonly codec: Codec<unknown>;
	/** The one text seen so far, while nothing was merged: returned as it is. */
	private single: string | null;
	private value: unknown = undefined;

	constructor(kind: TextMeasure, first: string | null) {
		this.codec = CODECS[kind];
		this.single = first;
	}

	add(text: string | null): void {
		if (text === null) return;
		if (this.value === undefined) {
			if (this.single === null) {
				this.single = text;
				return;
			}
			this.value = this.codec.decode(this.single);
			this.single = null;
		}
		this.value = this.codec.merge(this.value, this.codec.decode(text));
	}

	text(): string | null {
		return this.value === undefined ? this.single : this.codec.encode(this.value);
	}
}

/** Merges two stored texts of one kind; null is "no data". */
export function mergeMeasureText(kind: TextMeasure, a: string | null, b: string | null): string | null {
	const merge = new TextMerge(kind, a);
	merge.add(b);
	return merge.text();
}

/** The union of two value sets: exact while it holds at most DISTINCT_EXACT_LIMIT values. */
export function mergeDistinct(a: DistinctValues, b: DistinctValues): DistinctValues {
	if ("v" in a && "v" in b) {
		const union = [...new Set([...a.v, ...b.v])].sort();
		if (union.length <= DISTINCT_EXACT_LIMIT) return { v: union };
		return { h: encodeUnique(sketchOf(union)) };
	}
	const sketch = "h" in a ? decodeUnique(a.h) : sketchOf(a.v);
	mergeSketch(sketch, "h" in b ? decodeUnique(b.h) : sketchOf(b.v));
	return { h: encodeUnique(sketch) };
}

function sketchOf(values: string[]) {
	const sketch = emptySketch();
	for (const value of values) addValue(sketch, value);
	return sketch;
}

/** How many distinct values a set holds, and whether that is an estimate. */
export function countDistinct(values: DistinctValues): { count: number; estimated: boolean } {
	return "v" in values ? { count: values.v.length, estimated: false } : { count: countUnique(decodeUnique(values.h)), estimated: true };
}
