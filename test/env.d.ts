/// <reference types="vite/client" />
// Bindings and module types that exist only in tests.
declare namespace Cloudflare {
	interface Env {
		TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
	}
}

// Vite's ?raw suffix imports a file as its text (the settings test reads wrangler.toml this way).
declare module "*?raw" {
	const text: string;
	export default text;
}
