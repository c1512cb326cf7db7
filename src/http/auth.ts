// Tenant API keys: random, scope-prefixed, stored only as SHA-256 hashes, compared in constant time.
// A test key (ml_wt_, ml_rt_) is an ordinary key of the tenant's test space, "<tenant>~test".
import { TtlCache } from "../shared/ttl-cache.js";
import { findKeyByPrefix, isTestSpace, type ApiKeyRow, type Scope } from "../sinks/d1/tenants.js";
import { ApiError } from "../shared/errors.js";

const SCOPE_PREFIX: Record<Scope, string> = { write: "ml_w_", read: "ml_r_" };
const TEST_SCOPE_PREFIX: Record<Scope, string> = { write: "ml_wt_", read: "ml_rt_" };
/** Characters of a live key kept in clear as its public handle: the scope prefix and 8 more. */
export const PREFIX_LENGTH = 13;
/** The same for a test key, whose scope prefix is one character longer. */
export const TEST_PREFIX_LENGTH = 14;
/** How long a verified key is trusted without asking D1: a revocation takes effect within it. */
export const KEY_CACHE_TTL_MS = 60_000;

export interface IssuedKey {
	key: string;
	hash: string;
	prefix: string;
	scope: Scope;
}

interface VerifiedKey {
	tenant: string;
	scope: Scope;
}

/**
 * Keys verified recently by this isolate, by the hash of the whole key: the ingest hot path does
 * not wait for D1 on every request. Only successful verifications are kept.
 */
const verified = new TtlCache<VerifiedKey>(KEY_CACHE_TTL_MS);

/** A new key: a readable scope prefix (ml_wt_/ml_rt_ for a test key) and 192 random bits, base64url. */
export async function issueKey(scope: Scope, test = false): Promise<IssuedKey> {
	const random = crypto.getRandomValues(new Uint8Array(24));
	const key = (test ? TEST_SCOPE_PREFIX : SCOPE_PREFIX)[scope] + base64url(random);
	return { key, hash: toHex(await sha256(key)), prefix: key.slice(0, prefixLength(key)), scope };
}

/** Whether a key, or its public prefix, is a test key's: ml_wt_ or ml_rt_ (a live key has "_" where they have "t"). */
export function isTestKey(key: string): boolean {
	return key.startsWith(TEST_SCOPE_PREFIX.write) || key.startsWith(TEST_SCOPE_PREFIX.read);
}

/** How many leading characters of this key (or prefix) are its public prefix. */
export function prefixLength(key: string): number {
	return isTestKey(key) ? TEST_PREFIX_LENGTH : PREFIX_LENGTH;
}

function sha256(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

function toHex(buffer: ArrayBuffer): string {
	let hex = "";
	for (const byte of new Uint8Array(buffer)) hex += byte.toString(16).padStart(2, "0");
	return hex;
}

function fromHex(hex: string): Uint8Array {
	const bytes = new Uint8Array(hex.length / 2);
	for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
	return bytes;
}

function base64url(bytes: Uint8Array): string {
	return btoa(String.fromCharCode(...bytes))
		.replace(/\+/g, "-")
		.replace(/\//g, "_")
		.replace(/=+$/, "");
}

export function bearerToken(request: Request): string | null {
	const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "");
	return match ? match[1]! : null;
}

/** Resolves the caller's tenant from its bearer key. 401 for no or unknown key, 403 for a wrong scope. */
export async function authenticate(request: Request, env: Env, scopes: readonly Scope[]): Promise<string> {
	const token = bearerToken(request);
	if (!token) throw new ApiError(401, "Missing bearer key");
	return verifyKey(env, token, scopes);
}

/** A D1 outage is the caller's cue to retry, not an internal error: 503 with Retry-After. */
async function findKey(env: Env, prefix: string): Promise<ApiKeyRow | null> {
	try {
		return await findKeyByPrefix(env.DB, prefix);
	} catch (err) {
		console.error("key lookup failed", err);
		throw new ApiError(503, "Key verification is unavailable; retry shortly", { headers: { "retry-after": "5" } });
	}
}

/**
 * Verifies a raw tenant key for one of the scopes and returns its tenant: for a test key, the
 * test space "<tenant>~test". 503 while D1 cannot be reached.
 */
export async function verifyKey(env: Env, key: string, scopes: readonly Scope[]): Promise<string> {
	const digest = await sha256(key);
	const cacheKey = toHex(digest);
	let found = verified.get(cacheKey);
	if (!found) {
		const length = prefixLength(key);
		const row = key.length > length ? await findKey(env, key.slice(0, length)) : null;
		if (!row || !crypto.subtle.timingSafeEqual(digest, fromHex(row.key_hash))) throw new ApiError(401, "Unknown or revoked key");
		// Issuance never breaks this, but a live key must never land in a test space, nor the reverse.
		if (isTestSpace(row.tenant_id) !== isTestKey(key)) throw new ApiError(401, "Unknown or revoked key");
		found = { tenant: row.tenant_id, scope: row.scope };
		verified.set(cacheKey, found);
	}
	if (!scopes.includes(found.scope)) throw new ApiError(403, `A ${found.scope} key cannot use this route`);
	return found.tenant;
}

/** Admin routes: off (401) unless ADMIN_TOKEN is set, and then only for that exact token. */
export async function requireAdmin(request: Request, env: Env): Promise<void> {
	const token = bearerToken(request);
	if (!env.ADMIN_TOKEN || !token) throw new ApiError(401, "Admin token required");
	const [given, expected] = await Promise.all([sha256(token), sha256(env.ADMIN_TOKEN)]);
	// Comparing digests keeps the comparison constant-time whatever the token lengths.
	if (!crypto.subtle.timingSafeEqual(given, expected)) throw new ApiError(401, "Admin token required");
}
