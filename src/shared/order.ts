// One text order for every answer that D1 also sorts: SQLite compares text by its UTF-8 bytes,
// which is code-point order, while JavaScript's < compares UTF-16 code units. The two disagree
// between U+E000–U+FFFF and characters past U+FFFF, so a page cut by D1 and merged in JavaScript
// would lose or repeat values unless JavaScript orders by code point too.

/** Compares two strings by code point, as SQLite's default collation does. */
export function compareCodePoints(a: string, b: string): number {
	for (let i = 0; i < a.length && i < b.length;) {
		const x = a.codePointAt(i)!;
		const y = b.codePointAt(i)!;
		if (x !== y) return x - y;
		i += x > 0xffff ? 2 : 1;
	}
	return a.length - b.length;
}
