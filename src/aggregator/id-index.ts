// A compact in-memory index of remembered event ids: 8 bytes a slot instead of a JS string per id.
// It only narrows the search: a hit names the stored chunk that may hold the id, and the caller
// checks the id itself there, so a fingerprint collision can never drop a real event.

/** A well-mixed, nonzero 32-bit fingerprint of a string (cyrb53's mixing, folded to 32 bits). */
export function fingerprintOf(id: string): number {
	let h1 = 0xdeadbeef;
	let h2 = 0x41c6ce57;
	for (let i = 0; i < id.length; i++) {
		const c = id.charCodeAt(i);
		h1 = Math.imul(h1 ^ c, 2654435761);
		h2 = Math.imul(h2 ^ c, 1597334677);
	}
	h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
	h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
	// 0 marks an empty slot.
	return (h1 ^ h2) >>> 0 || 1;
}

const MIN_CAPACITY = 1024;
/** Grow before the table is this full, so probe chains stay short. */
const MAX_LOAD = 0.7;

/**
 * Open addressing with linear probing over (fingerprint, chunk) pairs. The slot comes from the
 * fingerprint, so the table can grow without the ids. Two ids share a fingerprint with
 * probability 2^-32; both are kept, and `candidates` returns every chunk that may hold an id.
 */
export class IdIndex {
	private fingerprints: Uint32Array;
	private chunks: Uint32Array;
	private mask: number;
	size = 0;

	constructor() {
		this.fingerprints = new Uint32Array(MIN_CAPACITY);
		this.chunks = new Uint32Array(MIN_CAPACITY);
		this.mask = MIN_CAPACITY - 1;
	}

	/** Bytes the index holds in memory. */
	get bytes(): number {
		return this.fingerprints.byteLength + this.chunks.byteLength;
	}

	add(id: string, chunk: number): void {
		if (this.size + 1 > (this.mask + 1) * MAX_LOAD) this.grow();
		this.place(fingerprintOf(id), chunk);
		this.size++;
	}

	/** The chunks that may hold `id`: usually none, one for a duplicate. */
	candidates(id: string, fingerprint = fingerprintOf(id)): number[] {
		const found: number[] = [];
		for (let i = fingerprint & this.mask; this.fingerprints[i] !== 0; i = (i + 1) & this.mask) {
			if (this.fingerprints[i] === fingerprint && !found.includes(this.chunks[i]!)) found.push(this.chunks[i]!);
		}
		return found;
	}

	private place(fingerprint: number, chunk: number): void {
		let i = fingerprint & this.mask;
		while (this.fingerprints[i] !== 0) i = (i + 1) & this.mask;
		this.fingerprints[i] = fingerprint;
		this.chunks[i] = chunk;
	}

	private grow(): void {
		const { fingerprints, chunks } = this;
		const capacity = (this.mask + 1) * 2;
		this.fingerprints = new Uint32Array(capacity);
		this.chunks = new Uint32Array(capacity);
		this.mask = capacity - 1;
		for (let i = 0; i < fingerprints.length; i++) if (fingerprints[i] !== 0) this.place(fingerprints[i]!, chunks[i]!);
	}
}
