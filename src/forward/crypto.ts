// Destination secrets at rest: AES-256-GCM under a key derived (HKDF-SHA-256) from the Worker
// secret DESTINATIONS_KEY, each ciphertext bound to its tenant and destination id.

const INFO = new TextEncoder().encode("meterline destinations v1");
const keys = new Map<string, Promise<CryptoKey>>();

/** The AES key for a DESTINATIONS_KEY value, derived once per isolate. */
function aesKey(secret: string): Promise<CryptoKey> {
	let key = keys.get(secret);
	if (!key) {
		key = crypto.subtle
			.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"])
			.then((material) =>
				crypto.subtle.deriveKey(
					{ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: INFO },
					material,
					{ name: "AES-GCM", length: 256 },
					false,
					["encrypt", "decrypt"],
				),
			);
		keys.set(secret, key);
	}
	return key;
}

function base64(bytes: Uint8Array): string {
	let text = "";
	for (const byte of bytes) text += String.fromCharCode(byte);
	return btoa(text);
}

function unbase64(text: string): Uint8Array {
	return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Encrypts `plaintext` for one destination: base64 of a random 96-bit IV followed by the ciphertext. */
export async function encryptSecret(secret: string, boundTo: string, plaintext: string): Promise<string> {
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const sealed = await crypto.subtle.encrypt(
		{ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(boundTo) },
		await aesKey(secret),
		new TextEncoder().encode(plaintext),
	);
	const out = new Uint8Array(12 + sealed.byteLength);
	out.set(iv);
	out.set(new Uint8Array(sealed), 12);
	return base64(out);
}

/** Decrypts what encryptSecret sealed; throws for another key, another binding or a changed byte. */
export async function decryptSecret(secret: string, boundTo: string, sealed: string): Promise<string> {
	const bytes = unbase64(sealed);
	const plain = await crypto.subtle.decrypt(
		{ name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: new TextEncoder().encode(boundTo) },
		await aesKey(secret),
		bytes.slice(12),
	);
	return new TextDecoder().decode(plain);
}
