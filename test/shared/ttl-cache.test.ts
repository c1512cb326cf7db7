// The per-isolate cache behind verified keys, allowed origins and destinations: entries expire,
// stale() still answers, and the oldest written entry goes first at the bound.
import { describe, expect, it } from "vitest";
import { TtlCache } from "../../src/shared/ttl-cache";

describe("TtlCache", () => {
	it("answers an entry until its time is up, and stale() after", () => {
		const cache = new TtlCache<string>(1000);
		cache.set("a", "one", 5000);
		expect([cache.get("a", 5999), cache.get("a", 6000), cache.stale("a")]).toEqual(["one", undefined, "one"]);
		expect(cache.get("b", 5000)).toBeUndefined();
	});

	it("evicts the oldest written entry at its bound, and a rewrite makes an entry the newest", () => {
		const cache = new TtlCache<number>(1000, 2);
		cache.set("a", 1, 0);
		cache.set("b", 2, 0);
		cache.set("a", 3, 0);
		cache.set("c", 4, 0);
		expect([cache.stale("a"), cache.stale("b"), cache.stale("c")]).toEqual([3, undefined, 4]);
	});

	it("forgets on delete and clear", () => {
		const cache = new TtlCache<number>(1000);
		cache.set("a", 1, 0);
		cache.set("b", 2, 0);
		cache.delete("a");
		expect([cache.stale("a"), cache.stale("b")]).toEqual([undefined, 2]);
		cache.clear();
		expect(cache.stale("b")).toBeUndefined();
	});
});
