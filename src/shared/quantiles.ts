// Duration quantiles that merge: a DDSketch (Masson, Rim & Lee, VLDB 2019) with 1% relative
// accuracy, its bins kept sparse. Merging adds counts bin by bin, so a merged sketch is exactly the
// sketch of all the values, and p50/p95/p99 of any set of buckets come out within 1%.
//
// The index mapping is DDSketch's LogarithmicMapping, written out here rather than imported from
// @datadog/sketches-js 2.1.1: every module of that package (its KeyMapping base class included)
// lazily requires its protobuf code, which requires protobufjs, not one of its dependencies, so
// wrangler's esbuild bundle fails with `Could not resolve "protobufjs/minimal"`. The constants and
// arithmetic below are that class's, so keys and values are bit-for-bit the same.

/** The sketch's guarantee: a reported quantile is within this fraction of the true one. */
export const RELATIVE_ACCURACY = 0.01;
const GAMMA_MANTISSA = (2 * RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
/** γ = (1 + α) / (1 − α): each bin spans (γ^(i−1), γ^i]. */
const GAMMA = 1 + GAMMA_MANTISSA;
const MULTIPLIER = (1 / Math.log1p(GAMMA_MANTISSA)) * Math.log(2);
/** Durations below this (0 included) are counted in `z` and reported as 0: a 1 µs absolute error at most. */
export const MIN_MS = 0.001;
/** A day: the longest duration a sketch takes. */
export const MAX_MS = 86_400_000;
const MIN_KEY = binKey(MIN_MS);
const MAX_KEY = binKey(MAX_MS);

export interface DurationSketch {
	/** bin index → count */
	b: Record<string, number>;
	/** values too small for a bin (0 included) */
	z: number;
}

/** ⌈log_γ(ms)⌉, the bin of a duration of at least MIN_MS. */
function binKey(ms: number): number {
	return Math.ceil(Math.log2(ms) * MULTIPLIER);
}

/** 2γ^i / (γ + 1), the bin's representative: within RELATIVE_ACCURACY of every value in the bin. */
function binValue(key: number): number {
	return Math.pow(2, key / MULTIPLIER) * (2 / (1 + GAMMA));
}

export function emptyDurations(): DurationSketch {
	return { b: {}, z: 0 };
}

/** Adds one duration in milliseconds, in place. Throws a RangeError outside [0, MAX_MS], NaN included. */
export function addDuration(s: DurationSketch, ms: number): void {
	if (!(ms >= 0 && ms <= MAX_MS)) throw new RangeError(`duration out of range: ${ms}`);
	if (ms < MIN_MS) {
		s.z++;
		return;
	}
	const key = binKey(ms);
	s.b[key] = (s.b[key] ?? 0) + 1;
}

/** Merges `other` into `into`, in place, by adding counts bin by bin. */
export function mergeDurations(into: DurationSketch, other: DurationSketch): void {
	for (const [key, count] of Object.entries(other.b)) into.b[key] = (into.b[key] ?? 0) + count;
	into.z += other.z;
}

/** The number of durations added. */
export function durationCount(s: DurationSketch): number {
	let count = s.z;
	for (const n of Object.values(s.b)) count += n;
	return count;
}

/**
 * The q-quantile, DDSketch's convention: of the n durations sorted ascending, the one at (0-based)
 * rank ⌊q·(n − 1)⌋, reported as its bin's representative, so within 1% of it (0 for the zero bin).
 * q = 0 is the minimum, q = 1 the maximum. Null for an empty sketch; a RangeError for q outside [0, 1].
 */
export function quantile(s: DurationSketch, q: number): number | null {
	if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile out of range: ${q}`);
	const n = durationCount(s);
	if (n === 0) return null;
	const rank = Math.floor(q * (n - 1));
	let running = s.z;
	if (rank < running) return 0;
	const keys = sortedKeys(s);
	for (const key of keys) {
		running += s.b[key];
		if (running > rank) return binValue(key);
	}
	// Not reached: the counts add up to n, which exceeds the rank.
	return binValue(keys[keys.length - 1]);
}

function sortedKeys(s: DurationSketch): number[] {
	return Object.keys(s.b)
		.map(Number)
		.sort((a, b) => a - b);
}

/**
 * The sketch as text for a TEXT column: its own JSON, bins in ascending order, so it is a function
 * of the contents alone (equal sketches encode equally, whatever the merge order). About 9 bytes a
 * bin; at most 1,605 bins cover 1 µs to a day, so under 16 KB in the worst case.
 */
export function encodeDurations(s: DurationSketch): string {
	// What JSON.stringify writes for the bins inserted in ascending order: an object lists its
	// non-negative (index-like) keys first, ascending, then the others in insertion order. Written
	// directly, without building that object: a fold encodes a sketch per series row on every ingest.
	const keys = sortedKeys(s);
	let bins = "";
	for (const key of keys) if (key >= 0) bins += `,"${key}":${s.b[key]}`;
	for (const key of keys) if (key < 0) bins += `,"${key}":${s.b[key]}`;
	return `{"b":{${bins.slice(1)}},"z":${s.z}}`;
}

/** Reads what encodeDurations writes; throws on anything else. */
export function decodeDurations(text: string): DurationSketch {
	const parsed: unknown = JSON.parse(text);
	if (typeof parsed !== "object" || parsed === null) throw new Error("duration sketch: not an object");
	const { b, z } = parsed as Record<string, unknown>;
	if (typeof b !== "object" || b === null || Array.isArray(b)) throw new Error("duration sketch: bad bins");
	if (!Number.isSafeInteger(z) || (z as number) < 0) throw new Error("duration sketch: bad zero count");
	const sketch: DurationSketch = { b: {}, z: z as number };
	for (const [key, count] of Object.entries(b)) {
		const index = Number(key);
		if (!Number.isInteger(index) || index < MIN_KEY || index > MAX_KEY || String(index) !== key) {
			throw new Error("duration sketch: bad bin index");
		}
		if (!Number.isSafeInteger(count) || count < 1) throw new Error("duration sketch: bad bin count");
		sketch.b[index] = count;
	}
	return sketch;
}
