// Tenant API keys: random, scope-prefixed, stored only as SHA-256 hashes.
import { findApiKey, type Scope } from "../db/queries";
import { ApiError } from "../http/errors";

const SCOPE_PREFIX: Record<Scope, string> = { write: "ml_w_", read: "ml_r_" };
/** Characters of a key kept in clear as its public handle (scope prefix + 8). */
const PREFIX_LENGTH = 13;

export interface IssuedKey {
	key: string;
	hash: string;
	prefix: string;
	scope: Scope;
}

/** A new key: a readable scope prefix and 192 random bits, base64url. */
export async function issueKey(scope: Scope): Promise<IssuedKey> {
	const random = crypto.getRandomValues(new Uint8Array(24));
	const key = SCOPE_PREFIX[scope] + base64url(random);
	return { key, hash: await sha256Hex(key), prefix: key.slice(0, PREFIX_LENGTH), scope };
}

export async function sha256Hex(text: string): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
	let hex = "";
	for (const byte of digest) hex += byte.toString(16).padStart(2, "0");
	return hex;
}

function base64url(bytes: Uint8Array): string {
	return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function bearerToken(request: Request): string | null {
	const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
	return match ? match[1]! : null;
}

/** Resolves the caller's tenant from its bearer key. 401 for no or unknown key, 403 for a wrong scope. */
export async function authenticate(request: Request, env: Env, scopes: readonly Scope[]): Promise<string> {
	const token = bearerToken(request);
	if (!token) throw new ApiError(401, "Missing bearer key");
	const found = await findApiKey(env.DB, await sha256Hex(token));
	if (!found) throw new ApiError(401, "Unknown or revoked key");
	if (!scopes.includes(found.scope)) throw new ApiError(403, `A ${found.scope} key cannot use this route`);
	return found.tenant_id;
}

/** Admin routes: off (401) unless ADMIN_TOKEN is set, and then only for that exact token. */
export async function requireAdmin(request: Request, env: Env): Promise<void> {
	const token = bearerToken(request);
	if (!env.ADMIN_TOKEN || !token) throw new ApiError(401, "Admin token required");
	const [given, expected] = await Promise.all([digest(token), digest(env.ADMIN_TOKEN)]);
	// Comparing digests keeps the comparison constant-time whatever the token lengths.
	if (!crypto.subtle.timingSafeEqual(given, expected)) throw new ApiError(401, "Admin token required");
}

function digest(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}
