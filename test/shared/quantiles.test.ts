// The duration sketch: quantiles within 1% of the exact ones, merging that equals one sketch over
// all the values, and a canonical text encoding.
import { describe, expect, it } from "vitest";
import { mulberry32 } from "../helpers";
import {
	MAX_MS,
	MIN_MS,
	addDuration,
	decodeDurations,
	durationCount,
	emptyDurations,
	encodeDurations,
	mergeDurations,
	quantile,
	type DurationSketch,
} from "../../src/shared/quantiles";

const QUANTILES = [0, 0.5, 0.95, 0.99, 1];

const prng = mulberry32;

function logNormal(n: number, seed: number, medianMs: number, sigma: number): number[] {
	const random = prng(seed);
	return Array.from({ length: n }, () => {
		const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
		return medianMs * Math.exp(sigma * normal);
	});
}

const DISTRIBUTIONS: [string, number[]][] = [
	["uniform over 10 s", Array.from({ length: 20_000 }, prng(1)).map((u) => u * 10_000)],
	["log-normal around 120 ms", logNormal(20_000, 2, 120, 1.2)],
	["log-normal around 0.3 ms", logNormal(20_000, 3, 0.3, 0.8)],
	["all equal", Array.from({ length: 10_000 }, () => 250)],
	["whole ms with 40% zeros", Array.from({ length: 20_000 }, prng(4)).map((u, i) => (i % 5 < 2 ? 0 : Math.floor(u * 2_000)))],
];

function sketchOf(values: number[]): DurationSketch {
	const sketch = emptyDurations();
	for (const ms of values) addDuration(sketch, ms);
	return sketch;
}

/** The definition quantile() documents: the sorted value at rank ⌊q·(n − 1)⌋. */
function exactQuantile(values: number[], q: number): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(q * (sorted.length - 1))];
}

function relativeError(estimate: number, exact: number): number {
	return exact === 0 ? Math.abs(estimate) : Math.abs(estimate - exact) / exact;
}

describe("quantile", () => {
	it.each(DISTRIBUTIONS)("is within 1%% of the exact p0, p50, p95, p99 and p100: %s", (_, values) => {
		const sketch = sketchOf(values);
		expect(durationCount(sketch)).toBe(values.length);
		for (const q of QUANTILES) {
			const estimate = quantile(sketch, q)!;
			expect(relativeError(estimate, exactQuantile(values, q)), `q ${q}`).toBeLessThanOrEqual(0.01);
		}
	});

	it("takes the value at rank ⌊q·(n − 1)⌋", () => {
		const sketch = sketchOf([40, 10, 30, 20]);
		const ranks = [0, 0.33, 0.34, 0.5, 0.99, 1].map((q) => quantile(sketch, q)!);
		expect(ranks.map((estimate, i) => relativeError(estimate, [10, 10, 20, 20, 30, 40][i]) <= 0.01)).toEqual(Array(6).fill(true));
	});

	it("reports a bin's representative, 2γ^i / (γ + 1)", () => {
		expect(quantile(sketchOf([1]), 0.5)).toBeCloseTo(0.99, 12);
	});

	it("reports durations below MIN_MS as 0", () => {
		const sketch = sketchOf([0, MIN_MS / 2, MIN_MS]);
		expect(sketch.z).toBe(2);
		expect([quantile(sketch, 0), quantile(sketch, 0.5)]).toEqual([0, 0]);
		expect(relativeError(quantile(sketch, 1)!, MIN_MS)).toBeLessThanOrEqual(0.01);
	});

	it("is null for an empty sketch", () => {
		expect(QUANTILES.map((q) => quantile(emptyDurations(), q))).toEqual([null, null, null, null, null]);
		expect(durationCount(emptyDurations())).toBe(0);
	});

	it.each([-0.01, 1.01, Number.NaN])("refuses q = %d", (q) => {
		expect(() => quantile(sketchOf([1]), q)).toThrow(RangeError);
	});
});

describe("addDuration", () => {
	it("takes 0 to a day, the extremes in bins -345 and 914", () => {
		expect(encodeDurations(sketchOf([MIN_MS, MAX_MS, 0]))).toBe('{"b":{"914":1,"-345":1},"z":1}');
	});

	it.each([-1, MAX_MS + 1, Number.NaN, Number.POSITIVE_INFINITY])("refuses %d ms", (ms) => {
		expect(() => addDuration(emptyDurations(), ms)).toThrow(RangeError);
	});
});

describe("mergeDurations", () => {
	const values = logNormal(30_000, 5, 80, 1.5);
	const whole = sketchOf(values);
	const parts = [0, 1, 2].map((part) => sketchOf(values.filter((_, i) => i % 3 === part)));

	it.each([
		[0, 1, 2],
		[2, 0, 1],
		[1, 2, 0],
	])("gives the sketch of all the values, in order %j", (...order) => {
		const into = emptyDurations();
		for (const part of order) mergeDurations(into, parts[part]);
		expect(encodeDurations(into)).toBe(encodeDurations(whole));
		expect(QUANTILES.map((q) => quantile(into, q))).toEqual(QUANTILES.map((q) => quantile(whole, q)));
		expect(durationCount(into)).toBe(30_000);
	});

	it("adds zero counts", () => {
		const into = sketchOf([0, 5]);
		mergeDurations(into, sketchOf([0, 0]));
		expect(encodeDurations(into)).toBe(encodeDurations(sketchOf([0, 0, 0, 5])));
	});
});

describe("encodeDurations / decodeDurations", () => {
	it("writes sorted bins, whatever the insertion order", () => {
		const text = '{"b":{"0":2,"231":1,"-34":1},"z":1}';
		expect(encodeDurations(sketchOf([0, 1, 1, 100, 0.5]))).toBe(text);
		expect(encodeDurations(sketchOf([100, 0.5, 1, 0, 1]))).toBe(text);
		expect(encodeDurations(emptyDurations())).toBe('{"b":{},"z":0}');
		expect(decodeDurations(text)).toEqual(sketchOf([0, 1, 1, 100, 0.5]));
	});

	it.each(DISTRIBUTIONS)("round-trips %s", (_, values) => {
		const text = encodeDurations(sketchOf(values));
		expect(encodeDurations(decodeDurations(text))).toBe(text);
	});

	it("writes every one of the 1,260 bins in 10,220 characters", () => {
		const full = emptyDurations();
		for (let key = -345; key <= 914; key++) full.b[key] = 1;
		const text = encodeDurations(full);
		expect(text.length).toBe(10_220);
		expect(decodeDurations(text)).toEqual(full);
	});

	it.each([
		"null",
		'{"b":[],"z":0}',
		'{"b":{}}',
		'{"b":{},"z":-1}',
		'{"b":{"1.5":1},"z":0}',
		'{"b":{"01":1},"z":0}',
		'{"b":{"915":1},"z":0}',
		'{"b":{"-346":1},"z":0}',
		'{"b":{"1":0},"z":0}',
	])("refuses %s", (text) => {
		expect(() => decodeDurations(text)).toThrow(/^duration sketch: /);
	});
});
