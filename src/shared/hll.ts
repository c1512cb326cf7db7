// Unique counts that merge: a HyperLogLog (precision 14, 16,384 registers, about 0.8% standard
// error) stored sparse, so a bucket with few users is small, plus the exact set of hashes while it
// holds at most EXACT_LIMIT of them, so small counts are exact rather than estimated.
//
// `r` maps a register index to its rank (merged by max), `e` lists the hashes while the set is
// small (merged by union; null once it has overflowed). Stored as text by encodeUnique.

export const PRECISION = 14;
const REGISTERS = 1 << PRECISION;
/** Hash bits left after the register index; a rank is 1…RANK_BITS + 1. */
const RANK_BITS = 53 - PRECISION;
const MAX_RANK = RANK_BITS + 1;
const INDEX_DIVISOR = 2 ** RANK_BITS;
/** Hashes kept exactly; past this the set is dropped and the registers alone estimate. */
export const EXACT_LIMIT = 128;

/** One character per register in the dense encoding: ranks never exceed 40, so this never runs out. */
const DENSE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** The length of every dense encoding: `{"d":"` + one character per register + `"}`. */
export const DENSE_LENGTH = REGISTERS + 8;
/** The shortest a sparse entry can be (`"0":1,`), so a sketch with more entries than this allows is dense without trying. */
const MIN_SPARSE_ENTRY = 6;

export interface UniqueSketch {
	/**
	 * register index → rank (the position of the first 1 bit after the index bits, from 1). Kept
	 * only once the exact set has overflowed: while `e` holds the hashes, the registers follow from
	 * them (`registersOf`), and updating both on every add and merge was most of a fold's sketch
	 * work. While exact it may hold some of those registers (a decoded sketch's own JSON), never others.
	 */
	r: Record<string, number>;
	/** the distinct hashes, while there are at most EXACT_LIMIT; null once there were more */
	e: number[] | null;
}

export function emptySketch(): UniqueSketch {
	return { r: {}, e: [] };
}

/** A 53-bit hash of a string (cyrb53), as a safe integer. */
export function hash53(text: string): number {
	let h1 = 0xdeadbeef;
	let h2 = 0x41c6ce57;
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		h1 = Math.imul(h1 ^ c, 2654435761);
		h2 = Math.imul(h2 ^ c, 1597334677);
	}
	h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
	h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
	return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Adds one value (by its hash, a non-negative safe integer) to a sketch, in place. */
export function addHash(sketch: UniqueSketch, hash: number): void {
	if (sketch.e === null) setRegister(sketch.r, hash);
	else if (!sketch.e.includes(hash)) {
		if (sketch.e.length < EXACT_LIMIT) sketch.e.push(hash);
		else overflow(sketch, [hash]);
	}
}

/** Raises the register `hash` falls in to the hash's rank, if that is higher. */
function setRegister(registers: Record<string, number>, hash: number): void {
	// The top PRECISION of the 53 bits pick the register; the rank counts the leading zeros of the
	// other 39, split into 7 high bits and 32 low ones so clz32 gives it exactly (log2 can round).
	const index = Math.floor(hash / INDEX_DIVISOR);
	const rest = hash - index * INDEX_DIVISOR;
	const high = Math.floor(rest / 4294967296);
	const rank = high !== 0 ? Math.clz32(high) - 24 : 8 + Math.clz32(rest >>> 0);
	if ((registers[index] ?? 0) < rank) registers[index] = rank;
}

/** Drops an exact sketch's set for its registers, with `more` hashes added to them. */
function overflow(sketch: UniqueSketch, more: Iterable<number>): void {
	for (const hash of sketch.e ?? []) setRegister(sketch.r, hash);
	for (const hash of more) setRegister(sketch.r, hash);
	sketch.e = null;
}

/** The sketch's registers (index → rank), computed from the hashes while it is exact. */
export function registersOf(sketch: UniqueSketch): Record<string, number> {
	if (sketch.e === null) return sketch.r;
	const registers = { ...sketch.r };
	for (const hash of sketch.e) setRegister(registers, hash);
	return registers;
}

/** Adds one value (a user id, say) to a sketch, in place. */
export function addValue(sketch: UniqueSketch, value: string): void {
	addHash(sketch, hash53(value));
}

/** Merges `other` into `into`, in place: registers by max, exact sets by union while small. */
export function mergeSketch(into: UniqueSketch, other: UniqueSketch): void {
	if (into.e !== null && other.e !== null) {
		const union = new Set(into.e);
		for (const hash of other.e) union.add(hash);
		if (union.size <= EXACT_LIMIT) into.e = [...union];
		else overflow(into, other.e);
		return;
	}
	if (into.e !== null) overflow(into, []);
	for (const [key, rank] of Object.entries(other.r)) if ((into.r[key] ?? 0) < rank) into.r[key] = rank;
	for (const hash of other.e ?? []) setRegister(into.r, hash);
}

/** The number of distinct values: exact while the set is small, else the HyperLogLog estimate. */
export function countUnique(sketch: UniqueSketch): number {
	if (sketch.e !== null) return sketch.e.length;
	// An overflowed set held more than EXACT_LIMIT hashes, so an estimate below that is known to be low.
	return Math.max(EXACT_LIMIT + 1, Math.round(estimate(sketch.r)));
}

/**
 * Ertl's improved raw estimator ("New cardinality estimation algorithms for HyperLogLog sketches",
 * 2017, algorithm 6). Unlike the classic estimator with its switch to linear counting, it has no
 * bias bump around 2.5 × 16,384 (measured: +1.9% mean, 3.9% worst at 40,000 distinct) and needs
 * no empirical bias tables.
 */
function estimate(registers: Record<string, number>): number {
	const histogram = new Array<number>(MAX_RANK + 1).fill(0);
	let set = 0;
	for (const rank of Object.values(registers)) {
		histogram[rank]++;
		set++;
	}
	histogram[0] = REGISTERS - set;
	let z = REGISTERS * tau(1 - histogram[MAX_RANK] / REGISTERS);
	for (let k = RANK_BITS; k >= 1; k--) z = 0.5 * (z + histogram[k]);
	z += REGISTERS * sigma(histogram[0] / REGISTERS);
	return (REGISTERS * REGISTERS) / (2 * Math.LN2) / z;
}

/** σ(x) = x + Σ x^(2^k)·2^(k−1), summed until it stops changing. */
function sigma(x: number): number {
	if (x === 1) return Infinity;
	let y = 1;
	let z = x;
	let previous: number;
	do {
		x *= x;
		previous = z;
		z += x * y;
		y += y;
	} while (z !== previous);
	return z;
}

/** τ(x) = (1 − x − Σ (1 − x^(2^−k))²·2^−k) / 3, summed until it stops changing. */
function tau(x: number): number {
	if (x === 0 || x === 1) return 0;
	let y = 1;
	let z = 1 - x;
	let previous: number;
	do {
		x = Math.sqrt(x);
		previous = z;
		y *= 0.5;
		z -= (1 - x) ** 2 * y;
	} while (z !== previous);
	return z / 3;
}

/**
 * The sketch as text for a TEXT column, a function of its contents alone (so equal sketches encode
 * equally, whatever the merge order): `{"e":[…sorted hashes]}` while exact (the registers follow
 * from the hashes), `{"r":{index:rank,…}}` once overflowed, and `{"d":"…"}` with one base64
 * character per register once that is shorter, so a full sketch is DENSE_LENGTH (16,392) characters.
 */
export function encodeUnique(sketch: UniqueSketch): string {
	// A typed array sorts numbers natively, and its join writes each as JSON does.
	if (sketch.e !== null) return `{"e":[${Float64Array.from(sketch.e).sort().join(",")}]}`;
	if (Object.keys(sketch.r).length * MIN_SPARSE_ENTRY < DENSE_LENGTH) {
		// Integer-like keys enumerate in ascending order, so this is canonical too.
		const sparse = JSON.stringify({ r: sketch.r });
		if (sparse.length <= DENSE_LENGTH) return sparse;
	}
	let dense = "";
	for (let index = 0; index < REGISTERS; index++) dense += DENSE_ALPHABET[sketch.r[index] ?? 0];
	return `{"d":"${dense}"}`;
}

/** Reads any encoding encodeUnique writes (and the sketch's own JSON); throws on anything else. */
export function decodeUnique(text: string): UniqueSketch {
	const parsed: unknown = JSON.parse(text);
	if (typeof parsed !== "object" || parsed === null) throw new Error("unique sketch: not an object");
	const { r, e, d } = parsed as Record<string, unknown>;
	if (r === undefined && d === undefined && !Array.isArray(e)) throw new Error("unique sketch: no registers or hashes");
	const sketch: UniqueSketch = { r: {}, e: null };
	if (d !== undefined) {
		if (typeof d !== "string" || d.length !== REGISTERS) throw new Error("unique sketch: bad dense registers");
		for (let index = 0; index < REGISTERS; index++) {
			const rank = DENSE_ALPHABET.indexOf(d[index]);
			if (rank < 0 || rank > MAX_RANK) throw new Error("unique sketch: bad dense register");
			if (rank > 0) sketch.r[index] = rank;
		}
	}
	if (r !== undefined) {
		if (typeof r !== "object" || r === null || Array.isArray(r)) throw new Error("unique sketch: bad registers");
		for (const [key, rank] of Object.entries(r)) {
			const index = Number(key);
			if (!Number.isInteger(index) || index < 0 || index >= REGISTERS || String(index) !== key) {
				throw new Error("unique sketch: bad register index");
			}
			if (!Number.isInteger(rank) || rank < 1 || rank > MAX_RANK) throw new Error("unique sketch: bad register rank");
			if ((sketch.r[index] ?? 0) < rank) sketch.r[index] = rank;
		}
	}
	if (e !== undefined && e !== null) {
		if (!Array.isArray(e)) throw new Error("unique sketch: bad hashes");
		sketch.e = [];
		for (const hash of e) {
			if (!Number.isSafeInteger(hash) || hash < 0) throw new Error("unique sketch: bad hash");
			addHash(sketch, hash);
		}
	}
	return sketch;
}
