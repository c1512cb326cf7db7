// A per-isolate cache of what D1 said a moment ago (verified keys, allowed origins, destinations),
// so hot paths do not ask D1 each time: each entry lives a fixed time, and the number of entries is
// bounded, the oldest written going first.
export class TtlCache<V> {
	private readonly entries = new Map<string, { value: V; expires: number }>();

	constructor(
		private readonly ttlMs: number,
		private readonly max = 10_000,
	) {}

	/** The entry while it lives, else undefined. */
	get(key: string, now = Date.now()): V | undefined {
		const entry = this.entries.get(key);
		return entry && entry.expires > now ? entry.value : undefined;
	}

	/** The last value written, expired or not: a fallback while the source cannot be asked. */
	stale(key: string): V | undefined {
		return this.entries.get(key)?.value;
	}

	set(key: string, value: V, now = Date.now()): void {
		this.entries.delete(key);
		if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
		this.entries.set(key, { value, expires: now + this.ttlMs });
	}

	delete(key: string): void {
		this.entries.delete(key);
	}

	clear(): void {
		this.entries.clear();
	}
}
