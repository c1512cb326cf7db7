// IdIndex: the compact in-memory index that names the chunk that may hold an id.
import { describe, expect, it } from "vitest";
import { fingerprintOf, IdIndex } from "../../src/aggregator/id-index";

describe("IdIndex", () => {
	it("names the chunk an added id is in, and none for an id never added", () => {
		const index = new IdIndex();
		index.add("a", 7);
		index.add("b", 9);

		expect([index.candidates("a"), index.candidates("b"), index.candidates("c")]).toEqual([[7], [9], []]);
		expect(index.size).toBe(2);
	});

	it("keeps every entry when it grows past its first capacity", () => {
		const index = new IdIndex();
		for (let i = 0; i < 5_000; i++) index.add(`id-${i}`, i);

		expect(index.size).toBe(5_000);
		// 1024 slots hold 716 ids below the 0.7 load limit; 5000 ids need 8192 slots of 8 bytes.
		expect(index.bytes).toBe(8192 * 8);
		for (let i = 0; i < 5_000; i++) expect(index.candidates(`id-${i}`)).toContain(i);
	});

	it("names each chunk once, even when an id was added twice to it", () => {
		const index = new IdIndex();
		index.add("a", 3);
		index.add("a", 3);
		index.add("a", 4);

		expect(index.candidates("a")).toEqual([3, 4]);
	});

	it("gives nonzero fingerprints that differ for nearby ids", () => {
		const fingerprints = new Set(Array.from({ length: 10_000 }, (_, i) => fingerprintOf(`evt-${i}`)));
		expect(fingerprints.size).toBe(10_000);
		expect(fingerprints.has(0)).toBe(false);
	});
});
