// ISO 8601 instants, strictly: Date.parse alone would roll 2026-02-30 over to March.

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Epoch ms for an ISO 8601 date-time with `Z` or an offset (or, with `allowDate`, a bare UTC
 * date), or NaN when the text is not one or names a day or time that does not exist.
 */
export function parseIsoInstant(text: string, allowDate = false): number {
	const match = ISO.exec(text);
	if (!match || (match[4] === undefined && !allowDate)) return NaN;
	const [y, m, d, h, min, s] = match.slice(1, 7).map((part) => Number(part ?? 0)) as [number, number, number, number, number, number];
	const day = new Date(Date.UTC(y, m - 1, d));
	if (day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d || h > 23 || min > 59 || s > 59) return NaN;
	return Date.parse(match[4] === undefined ? `${text}T00:00:00Z` : text);
}
