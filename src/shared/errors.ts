// One error shape for every route: {"error": {code, message, details?}}. Internal errors never leak.

/** A problem with one field of the request, named by its path (and batch index, for events). */
export interface FieldIssue {
	index?: number;
	path: string;
	message: string;
}

const CODES: Record<number, string> = {
	400: "invalid_request",
	401: "unauthorized",
	403: "forbidden",
	404: "not_found",
	405: "method_not_allowed",
	409: "conflict",
	413: "payload_too_large",
	415: "unsupported_media_type",
	429: "rate_limited",
	503: "unavailable",
};

export interface ApiErrorOptions {
	/** One entry per bad field. */
	details?: FieldIssue[];
	/** Response headers, e.g. Retry-After. */
	headers?: Record<string, string>;
	/** The error code; by default the one for the status. */
	code?: string;
}

/** An error whose message is safe to show the caller. Anything else becomes a bare 500. */
export class ApiError extends Error {
	readonly details?: FieldIssue[];
	readonly headers?: Record<string, string>;
	readonly code: string;

	constructor(
		readonly status: number,
		message: string,
		options: ApiErrorOptions = {},
	) {
		super(message);
		this.details = options.details;
		this.headers = options.headers;
		this.code = options.code ?? CODES[status] ?? "error";
	}
}

/** A 400 naming the one field that is wrong. */
export function invalidField(path: string, message: string): ApiError {
	return new ApiError(400, `${path}: ${message}`, { details: [{ path, message }] });
}

export function json(body: unknown, status = 200, headers?: Record<string, string>): Response {
	return new Response(JSON.stringify(body), {
		status,
		headers: { "content-type": "application/json; charset=utf-8", ...headers },
	});
}

function apiErrorResponse(err: ApiError): Response {
	const error: Record<string, unknown> = { code: err.code, message: err.message };
	if (err.details?.length) error.details = err.details;
	return json({ error }, err.status, err.headers);
}

/** The central catch: known errors answer with their own status; the rest is logged and hidden. */
export function toErrorResponse(err: unknown): Response {
	if (err instanceof ApiError) return apiErrorResponse(err);
	console.error("unhandled error", err);
	return json({ error: { code: "internal", message: "Internal error" } }, 500);
}
