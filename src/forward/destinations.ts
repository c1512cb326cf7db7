// What a destination is: its kind, its plain config and its secret fields, validated once here for
// the API and read back (decrypted) for the consumer.
import { isPlainObject } from "../shared/objects.js";
import { invalidField } from "../shared/errors.js";
import type { DestinationRow } from "../sinks/d1/destinations.js";
import { decryptSecret } from "./crypto.js";

export const KINDS = ["posthog", "segment", "mixpanel", "amplitude", "webhook"] as const;
export type Kind = (typeof KINDS)[number];

export interface DestinationConfig {
	/** The provider's API origin (posthog, segment, mixpanel, amplitude). */
	host?: string;
	/** The webhook's URL. */
	url?: string;
	/** The webhook's signature header, lower-case. */
	signatureHeader?: string;
}

/** A destination as the consumer uses it, its secret decrypted. */
export interface Destination {
	tenant: string;
	id: string;
	kind: Kind;
	config: DestinationConfig;
	secret: Record<string, string>;
}

interface KindSpec {
	/** The default API origin, for kinds that have one. */
	host?: string;
	/** The one secret field. */
	secret: string;
	/** Its minimum length. */
	secretMin: number;
}

/** Each kind's default origin (their US regions) and its secret field. */
export const KIND_SPECS: Record<Kind, KindSpec> = {
	posthog: { host: "https://us.i.posthog.com", secret: "apiKey", secretMin: 1 },
	segment: { host: "https://api.segment.io", secret: "writeKey", secretMin: 1 },
	mixpanel: { host: "https://api.mixpanel.com", secret: "token", secretMin: 1 },
	amplitude: { host: "https://api2.amplitude.com", secret: "apiKey", secretMin: 1 },
	webhook: { secret: "signingSecret", secretMin: 16 },
};

export const DESTINATION_LIMITS = { maxPerTenant: 10, maxBodyBytes: 8 * 1024, maxUrlLength: 2000, maxSecretLength: 256 } as const;
export const DEFAULT_SIGNATURE_HEADER = "x-meterline-signature";

/** An HTTP header name (RFC 9110 token); the ones fetch or the body own are refused. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const RESERVED_HEADERS = new Set(["content-type", "content-length", "host", "transfer-encoding", "connection", "user-agent"]);
/** Printable ASCII without spaces: what provider keys are made of. */
const SECRET = /^[\x21-\x7e]+$/;

/** A URL the consumer may call: https, or http to localhost / 127.0.0.1 (local tests), without credentials or fragment. */
function checkUrl(path: string, value: unknown): URL {
	if (typeof value !== "string" || value.length === 0 || value.length > DESTINATION_LIMITS.maxUrlLength)
		throw invalidField(path, `must be a URL of 1–${DESTINATION_LIMITS.maxUrlLength} characters`);
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw invalidField(path, "must be an absolute URL");
	}
	const local = url.hostname === "localhost" || url.hostname === "127.0.0.1";
	if (url.protocol !== "https:" && !(url.protocol === "http:" && local))
		throw invalidField(path, "must be https (http only for localhost or 127.0.0.1)");
	if (url.username || url.password) throw invalidField(path, "must not carry credentials");
	if (url.hash) throw invalidField(path, "must not have a fragment");
	if (!local && !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/.test(url.hostname))
		throw invalidField(path, "must name a host by its DNS name (no IP address, no single-label name)");
	return url;
}

/** An API origin: a URL with nothing after the host (a trailing slash is allowed), kept as its origin. */
function checkHost(value: unknown): string {
	const url = checkUrl("host", value);
	if (url.pathname !== "/" || url.search)
		throw invalidField("host", "must be an origin such as https://eu.i.posthog.com, without a path or query");
	return url.origin;
}

export interface ValidDestination {
	kind: Kind;
	config: DestinationConfig;
	secret: Record<string, string>;
}

/** Validates a POST /v1/destinations body; throws a 400 naming the first bad field. */
export function validateDestination(body: unknown): ValidDestination {
	if (!isPlainObject(body)) throw invalidField("body", "must be a JSON object");
	const kind = body.kind;
	if (typeof kind !== "string" || !(KINDS as readonly string[]).includes(kind))
		throw invalidField("kind", `must be one of ${KINDS.join(", ")}`);
	const spec = KIND_SPECS[kind as Kind];
	const allowed = new Set(["kind", spec.secret, ...(kind === "webhook" ? ["url", "signatureHeader"] : ["host"])]);
	for (const field of Object.keys(body)) if (!allowed.has(field)) throw invalidField(field, `is not a field of a ${kind} destination`);

	const value = body[spec.secret];
	if (
		typeof value !== "string" ||
		value.length < spec.secretMin ||
		value.length > DESTINATION_LIMITS.maxSecretLength ||
		!SECRET.test(value)
	)
		throw invalidField(
			spec.secret,
			`must be ${spec.secretMin}–${DESTINATION_LIMITS.maxSecretLength} printable characters without spaces`,
		);

	const config: DestinationConfig = {};
	if (kind === "webhook") {
		config.url = checkUrl("url", body.url).href;
		const header = body.signatureHeader ?? DEFAULT_SIGNATURE_HEADER;
		if (typeof header !== "string" || !HEADER_NAME.test(header))
			throw invalidField("signatureHeader", "must be an HTTP header name of 1–64 characters");
		if (RESERVED_HEADERS.has(header.toLowerCase())) throw invalidField("signatureHeader", `must not be ${header.toLowerCase()}`);
		config.signatureHeader = header.toLowerCase();
	} else {
		config.host = body.host === undefined ? spec.host! : checkHost(body.host);
	}
	return { kind: kind as Kind, config, secret: { [spec.secret]: value } };
}

/** What binds a destination's ciphertext: it decrypts only on its own row. */
export function secretBinding(tenant: string, id: string): string {
	return `${tenant}/${id}`;
}

/** A stored destination, its secret decrypted with DESTINATIONS_KEY. */
export async function openDestination(row: DestinationRow, key: string): Promise<Destination> {
	const secret = JSON.parse(await decryptSecret(key, secretBinding(row.tenant, row.id), row.secret)) as Record<string, string>;
	return { tenant: row.tenant, id: row.id, kind: row.kind as Kind, config: JSON.parse(row.config) as DestinationConfig, secret };
}
