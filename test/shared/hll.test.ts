// The unique-count sketch: exact while small, a HyperLogLog within 3% beyond, mergeable, and stored
// as sparse JSON or one character per register.
import { describe, expect, it } from "vitest";
import {
	DENSE_LENGTH,
	EXACT_LIMIT,
	addHash,
	addValue,
	countUnique,
	decodeUnique,
	emptySketch,
	encodeUnique,
	hash53,
	mergeSketch,
	registersOf,
	type UniqueSketch,
} from "../../src/shared/hll";

/** A sketch of `<prefix><i>` for i in [from, to), each value added `times` times. */
function sketchOf(from: number, to: number, prefix = "user-", times = 1): UniqueSketch {
	const sketch = emptySketch();
	for (let round = 0; round < times; round++) for (let i = from; i < to; i++) addValue(sketch, prefix + i);
	return sketch;
}

function merged(...sketches: UniqueSketch[]): UniqueSketch {
	const into = emptySketch();
	for (const sketch of sketches) mergeSketch(into, sketch);
	return into;
}

describe("hash53", () => {
	it("is cyrb53, a safe integer below 2^53", () => {
		expect([hash53(""), hash53("user-0"), hash53("user-1")]).toEqual([3338908027751811, 4196791440647702, 6545070316597502]);
	});
});

describe("addHash", () => {
	it.each([
		[0, 0, 40],
		[2 ** 38, 0, 1],
		[1, 0, 39],
		[2 ** 32, 0, 7],
		[2 ** 32 - 1, 0, 8],
		[2 ** 39 * 5 + 2 ** 20, 5, 19],
		[2 ** 53 - 1, 16383, 1],
	])("reads hash %i as register %i with rank %i", (hash, index, rank) => {
		const sketch = emptySketch();
		addHash(sketch, hash);
		expect(registersOf(sketch)).toEqual({ [index]: rank });
	});

	it("keeps a register's highest rank", () => {
		const sketch = emptySketch();
		for (const hash of [2 ** 38, 1, 2 ** 32]) addHash(sketch, hash);
		expect(registersOf(sketch)).toEqual({ 0: 39 });
	});
});

describe("countUnique", () => {
	it.each([0, 1, 99, EXACT_LIMIT])("counts %i distinct values exactly, duplicates ignored", (n) => {
		const sketch = sketchOf(0, n, "user-", 3);
		expect(countUnique(sketch)).toBe(n);
		expect(sketch.e).toHaveLength(n);
	});

	it("estimates once past the exact limit, never below it", () => {
		const sketch = sketchOf(0, EXACT_LIMIT + 1);
		expect(sketch.e).toBeNull();
		expect(countUnique(sketch)).toBe(130);
		expect(countUnique({ r: {}, e: null })).toBe(EXACT_LIMIT + 1);
	});

	it("is within 3% of 100,000 distinct users", () => {
		const count = countUnique(sketchOf(0, 100_000));
		expect(count).toBe(100_338);
		expect(Math.abs(count - 100_000)).toBeLessThanOrEqual(3_000);
	});

	it.each(["user-", "anon-", "acct_"])("stays within 3% from 1,000 to 100,000 distinct %s values", (prefix) => {
		for (const n of [1_000, 5_000, 20_000, 40_000, 50_000, 100_000]) {
			expect(Math.abs(countUnique(sketchOf(0, n, prefix)) - n) / n).toBeLessThan(0.03);
		}
	});

	it("is within 3% of 1,000,000 distinct users", () => {
		const count = countUnique(sketchOf(0, 1_000_000));
		expect(count).toBe(998_255);
		expect(Math.abs(count - 1_000_000)).toBeLessThanOrEqual(30_000);
	});
});

describe("mergeSketch", () => {
	it("gives the sketch of the union, in either order", () => {
		const union = encodeUnique(sketchOf(0, 100_000));
		const a = sketchOf(0, 60_000);
		const b = sketchOf(40_000, 100_000);
		expect(encodeUnique(merged(a, b))).toBe(union);
		expect(encodeUnique(merged(b, a))).toBe(union);
		expect(countUnique(merged(a, b))).toBe(100_338);
	});

	it("stays exact while the union is small", () => {
		const union = merged(sketchOf(0, 50), sketchOf(30, 100));
		expect(countUnique(union)).toBe(100);
		expect(encodeUnique(union)).toBe(encodeUnique(sketchOf(0, 100)));
		expect(encodeUnique(merged(sketchOf(30, 100), sketchOf(0, 50)))).toBe(encodeUnique(union));
	});

	it("drops the exact set when the union overflows it", () => {
		const union = merged(sketchOf(0, 100), sketchOf(100, 200));
		expect(union.e).toBeNull();
		expect(encodeUnique(union)).toBe(encodeUnique(sketchOf(0, 200)));
	});

	it("keeps no registers while exact, and all of them from the moment the set overflows", () => {
		const exact = sketchOf(0, EXACT_LIMIT);
		expect([exact.e!.length, exact.r]).toEqual([EXACT_LIMIT, {}]);
		const byAdd = sketchOf(0, EXACT_LIMIT + 1);
		const byMerge = merged(sketchOf(0, 64), sketchOf(64, EXACT_LIMIT + 1));
		const byMixedMerge = merged(sketchOf(0, 64), decodeUnique(encodeUnique(sketchOf(64, 1_000))));
		const expected = registersOf({ r: {}, e: [...exact.e!, hash53(`user-${EXACT_LIMIT}`)] });
		expect(Object.keys(expected).length).toBe(EXACT_LIMIT + 1);
		for (const sketch of [byAdd, byMerge]) expect([sketch.e, sketch.r]).toEqual([null, expected]);
		expect(encodeUnique(byMixedMerge)).toBe(encodeUnique(sketchOf(0, 1_000)));
	});

	it("merges exact, sparse and dense sketches into the sketch of the union", () => {
		const dense = decodeUnique(encodeUnique(sketchOf(0, 50_000)));
		const sparse = decodeUnique(encodeUnique(sketchOf(50_000, 51_000)));
		const exact = decodeUnique(encodeUnique(sketchOf(51_000, 51_100)));
		const union = encodeUnique(sketchOf(0, 51_100));
		expect(encodeUnique(merged(dense, sparse, exact))).toBe(union);
		expect(encodeUnique(merged(exact, sparse, dense))).toBe(union);
		expect(encodeUnique(merged(sparse, dense, exact))).toBe(union);
	});
});

describe("encodeUnique / decodeUnique", () => {
	it("writes a small sketch as its sorted hashes", () => {
		const sketch = emptySketch();
		for (const hash of [5, 3, 5]) addHash(sketch, hash);
		expect(encodeUnique(sketch)).toBe('{"e":[3,5]}');
		// Exact, it keeps only the hashes: the registers follow from them.
		expect(decodeUnique('{"e":[3,5]}')).toEqual({ r: {}, e: [3, 5] });
		expect(registersOf(decodeUnique('{"e":[3,5]}'))).toEqual({ 0: 38 });
		expect(encodeUnique(emptySketch())).toBe('{"e":[]}');
	});

	it.each([
		[0, '{"e":', 8],
		[1, '{"e":', 24],
		[EXACT_LIMIT, '{"e":', 2_168],
		[EXACT_LIMIT + 1, '{"r":', 1_207],
		[1_000, '{"r":', 9_017],
		[1_700, '{"r":', 14_991],
		[2_000, '{"d":', DENSE_LENGTH],
		[100_000, '{"d":', DENSE_LENGTH],
	])("round-trips %i distinct values (%s…, %i characters)", (n, start, length) => {
		const sketch = sketchOf(0, n);
		const text = encodeUnique(sketch);
		expect([text.slice(0, 5), text.length]).toEqual([start, length]);
		const decoded = decodeUnique(text);
		expect(encodeUnique(decoded)).toBe(text);
		expect(countUnique(decoded)).toBe(countUnique(sketch));
		expect(registersOf(decoded)).toEqual(registersOf(sketch));
	});

	it("writes a full sketch in DENSE_LENGTH (16,392) characters", () => {
		const full: UniqueSketch = { r: {}, e: null };
		for (let index = 0; index < 16_384; index++) full.r[index] = 40;
		const text = encodeUnique(full);
		expect([DENSE_LENGTH, text.length]).toEqual([16_392, 16_392]);
		expect(text).toBe(`{"d":"${"o".repeat(16_384)}"}`);
		expect(decodeUnique(text)).toEqual(full);
		expect(encodeUnique(sketchOf(0, 1_000_000)).length).toBe(16_392);
	});

	it("reads the sketch's own JSON", () => {
		const exact = sketchOf(0, 10);
		const overflowed = sketchOf(0, 500);
		expect(encodeUnique(decodeUnique(JSON.stringify(exact)))).toBe(encodeUnique(exact));
		expect(encodeUnique(decodeUnique(JSON.stringify(overflowed)))).toBe(encodeUnique(overflowed));
	});

	it.each([
		"null",
		"[]",
		"{}",
		'{"d":"AAA"}',
		`{"d":"${"p".repeat(16_384)}"}`,
		'{"r":{"16384":1}}',
		'{"r":{"01":1}}',
		'{"r":{"1":41}}',
		'{"r":{"1":0}}',
		'{"e":[-1]}',
		'{"e":[1.5]}',
		'{"e":"1"}',
	])("refuses %s", (text) => {
		expect(() => decodeUnique(text)).toThrow(/^unique sketch: /);
	});
});
