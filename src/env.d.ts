// Secrets are not in wrangler.toml, so `wrangler types` cannot see them: declared by hand.
interface Env {
	/** Bearer token for /v1/admin routes; admin routes answer 401 while it is unset. */
	ADMIN_TOKEN?: string;
}
declare namespace Cloudflare {
	interface Env {
		ADMIN_TOKEN?: string;
	}
}
