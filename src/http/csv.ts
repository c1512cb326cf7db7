// CSV answers: when a request asks for one, and how a text cell is written.

/** Whether the request's Accept asks for CSV. */
export function wantsCsv(request: Request): boolean {
	return /\btext\/csv\b/i.test(request.headers.get("accept") ?? "");
}

/** RFC 4180 quoting, and a leading quote for cells a spreadsheet would run as a formula. */
export function csvText(value: string): string {
	const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
	return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
