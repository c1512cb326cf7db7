// Event ids: UUIDv7 (RFC 9562 §5.7), so they sort by creation time, from a pool of random bytes, so
// creating one on a hot path (the client's track(), the edge's ids for events sent without one)
// costs no crypto call. An id is fixed at creation, so a retried send is deduplicated.

/** Ids per refill of the pool. */
export const IDS_PER_POOL = 409;
/** Random bytes per id: 74 random bits after the version and variant. */
const RANDOM_BYTES = 10;
/** The random tail as text: "xxx-yxxx-xxxxxxxxxxxx", after "tttttttt-tttt-7". */
const TAIL_CHARS = 21;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const HEX_CODES = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
const DASH = "-".charCodeAt(0);
const decoder = new TextDecoder();

let tails = "";
let next = IDS_PER_POOL;
let lastNow = -1;
let prefix = "";

/**
 * Fills the pool: one crypto call and one decode for IDS_PER_POOL ids, each tail formatted in
 * advance, so an id costs one slice and one concatenation. Filled on first use: Workers forbid
 * randomness at startup.
 */
function refill(): void {
	const random = crypto.getRandomValues(new Uint8Array(IDS_PER_POOL * RANDOM_BYTES));
	const text = new Uint8Array(IDS_PER_POOL * TAIL_CHARS);
	let t = 0;
	const hex = (byte: number) => {
		text[t++] = HEX_CODES[byte >> 4]!;
		text[t++] = HEX_CODES[byte & 15]!;
	};
	for (let r = 0; r < random.length; r += RANDOM_BYTES) {
		// 12 random bits after the version nibble; the variant (10xx) and 14 bits; then 48 bits.
		text[t++] = HEX_CODES[random[r]! & 15]!;
		hex(random[r + 1]!);
		text[t++] = DASH;
		hex((random[r + 2]! & 0x3f) | 0x80);
		hex(random[r + 3]!);
		text[t++] = DASH;
		for (let b = r + 4; b < r + RANDOM_BYTES; b++) hex(random[b]!);
	}
	tails = decoder.decode(text);
	next = 0;
}

/** A UUIDv7 for `now` (epoch ms). */
export function uuidv7(now: number): string {
	if (next === IDS_PER_POOL) refill();
	if (now !== lastNow) {
		// "tttttttt-tttt-7": the 48-bit time, big-endian. Workers hold Date.now() still within a
		// request, so this runs about once per request.
		const hi = Math.floor(now / 0x1000000);
		const lo = now % 0x1000000;
		prefix = `${HEX[hi >>> 16]}${HEX[(hi >>> 8) & 255]}${HEX[hi & 255]}${HEX[lo >>> 16]}-${HEX[(lo >>> 8) & 255]}${HEX[lo & 255]}-7`;
		lastNow = now;
	}
	const start = next++ * TAIL_CHARS;
	return prefix + tails.slice(start, start + TAIL_CHARS);
}
