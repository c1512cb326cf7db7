// Reads a JSON request body with the checks every route shares: media type, size, UTF-8, syntax.
import { ApiError } from "../shared/errors.js";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Parses the body as JSON, or throws a 413/415/400 that says what is wrong. */
export async function readJson(request: Request, maxBytes: number): Promise<unknown> {
	const type = request.headers.get("content-type") ?? "";
	if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
		throw new ApiError(415, "Content-Type must be application/json");
	}
	const declared = Number(request.headers.get("content-length") ?? "0");
	if (declared > maxBytes) throw tooLarge(maxBytes);
	const bytes = await readLimited(request, maxBytes);
	return parseJsonBytes(bytes);
}

/** Decodes strict UTF-8 (invalid sequences are refused, never replaced) and parses JSON. */
export function parseJsonBytes(bytes: Uint8Array): unknown {
	if (bytes.byteLength === 0) throw new ApiError(400, "Request body is empty", { details: [{ path: "body", message: "empty" }] });
	let text: string;
	try {
		text = strictUtf8.decode(bytes);
	} catch {
		throw new ApiError(400, "Request body is not valid UTF-8", { details: [{ path: "body", message: "invalid UTF-8" }] });
	}
	try {
		return JSON.parse(text);
	} catch {
		throw new ApiError(400, "Request body is not valid JSON", { details: [{ path: "body", message: "invalid JSON" }] });
	}
}

/**
 * Reads a body that may be gzip-compressed (Content-Encoding: gzip, or when `gzip` is set), with
 * `maxBytes` applied to the compressed and to the decompressed size, so a zip bomb stops early.
 */
export async function readMaybeGzip(request: Request, maxBytes: number, gzip: boolean): Promise<Uint8Array> {
	const encoding = (request.headers.get("content-encoding") ?? "").toLowerCase();
	const bytes = await readLimited(request, maxBytes);
	return gzip || encoding === "gzip" ? gunzipLimited(bytes, maxBytes) : bytes;
}

/** Whether the bytes start with gzip's magic number, which no JSON or form body can. */
export function isGzip(bytes: Uint8Array): boolean {
	return bytes.byteLength >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Decompresses gzip, stopping past `maxBytes` of output with a 413. */
export async function gunzipLimited(compressed: Uint8Array, maxBytes: number): Promise<Uint8Array> {
	const stream = new Blob([compressed]).stream().pipeThrough(new DecompressionStream("gzip"));
	try {
		return await readLimited(new Request("https://body.invalid", { method: "POST", body: stream }), maxBytes);
	} catch (err) {
		if (err instanceof ApiError) throw err;
		throw new ApiError(400, "Request body is not valid gzip", { details: [{ path: "body", message: "invalid gzip" }] });
	}
}

function tooLarge(maxBytes: number): ApiError {
	return new ApiError(413, `Request body exceeds ${maxBytes} bytes`, {
		details: [{ path: "body", message: `larger than ${maxBytes} bytes` }],
	});
}

/** Reads at most maxBytes, so a lying or absent Content-Length cannot make us buffer more. */
export async function readLimited(request: Request, maxBytes: number): Promise<Uint8Array> {
	if (!request.body) return new Uint8Array();
	// A declared length within the limit frames the body (HTTP stops reading there), so the runtime
	// may buffer it natively in one call instead of the chunk loop below, on every ingest request.
	// Without a length (chunked, a stream) the loop counts as it reads.
	const declared = request.headers.get("content-length");
	if (declared !== null && /^\d{1,10}$/.test(declared) && Number(declared) <= maxBytes) {
		const bytes = new Uint8Array(await request.arrayBuffer());
		if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
		return bytes;
	}
	const reader = request.body.getReader();
	const chunks: Uint8Array[] = [];
	let total = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		total += value.byteLength;
		if (total > maxBytes) {
			await reader.cancel();
			throw tooLarge(maxBytes);
		}
		chunks.push(value);
	}
	if (chunks.length === 1) return chunks[0]!;
	const out = new Uint8Array(total);
	let offset = 0;
	for (const chunk of chunks) {
		out.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return out;
}
