#!/usr/bin/env node
// `npm run dev`: the whole pipeline locally in workerd. Applies D1 migrations to the local state,
// creates .dev.vars and an idempotent demo tenant, then runs `wrangler dev` and prints how to call it.
// PORT and PERSIST_DIR choose the port and state folder; arguments after `--` go to `wrangler dev`.
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");
process.chdir(root);
const port = process.env.PORT ?? "8787";
const persistDir = process.env.PERSIST_DIR ?? ".wrangler/state";
const wranglerBin = path.join(path.dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");
const quietEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };

function wrangler(args) {
	const result = spawnSync(process.execPath, [wranglerBin, ...args], {
		stdio: ["ignore", "pipe", "inherit"],
		env: quietEnv,
		encoding: "utf8",
	});
	if (result.status !== 0) {
		process.stdout.write(result.stdout ?? "");
		console.error(`wrangler ${args.slice(0, 3).join(" ")} failed`);
		process.exit(result.status ?? 1);
	}
	return result.stdout;
}

if (!existsSync(".dev.vars")) {
	copyFileSync(".dev.vars.example", ".dev.vars");
	console.log("created .dev.vars from .dev.vars.example");
}

console.log(`applying D1 migrations to ${persistDir} …`);
wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir]);

// The demo tenant's keys are kept beside the local state, so every run prints the same working
// keys. The key format and hashing match src/auth/keys.ts (prefix + base64url, SHA-256 hex).
mkdirSync(persistDir, { recursive: true });
const demoFile = path.join(persistDir, "meterline-demo.json");
const demo = existsSync(demoFile)
	? JSON.parse(readFileSync(demoFile, "utf8"))
	: { id: "demo", writeKey: `ml_w_${randomBytes(24).toString("base64url")}`, readKey: `ml_r_${randomBytes(24).toString("base64url")}` };
writeFileSync(demoFile, JSON.stringify(demo, null, 2));
const now = new Date().toISOString();
const keyRow = (key, scope) =>
	`('${createHash("sha256").update(key).digest("hex")}', '${key.slice(0, 13)}', '${demo.id}', '${scope}', '${now}')`;
wrangler([
	"d1",
	"execute",
	"DB",
	"--local",
	"--persist-to",
	persistDir,
	"--command",
	`INSERT INTO tenants (id, name, created_at) VALUES ('${demo.id}', 'Demo tenant', '${now}') ON CONFLICT (id) DO NOTHING;
	 INSERT INTO api_keys (key_hash, prefix, tenant_id, scope, created_at) VALUES ${keyRow(demo.writeKey, "write")}, ${keyRow(demo.readKey, "read")}
	 ON CONFLICT DO NOTHING;`,
]);

const dev = spawn(process.execPath, [wranglerBin, "dev", "--port", port, "--persist-to", persistDir, ...process.argv.slice(2)], {
	stdio: "inherit",
	env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => dev.kill(signal));
dev.on("exit", (code) => process.exit(code ?? 0));

const base = `http://localhost:${port}`;
for (let attempt = 0; attempt < 600; attempt++) {
	await new Promise((resolve) => setTimeout(resolve, 250));
	const healthy = await fetch(`${base}/v1/health`).then(
		(r) => r.ok,
		() => false,
	);
	if (!healthy) continue;
	console.log(`
Meterline is running on ${base}

  demo tenant  ${demo.id}
  write key    ${demo.writeKey}
  read key     ${demo.readKey}

Send an event:
  curl -X POST ${base}/v1/events -H 'Authorization: Bearer ${demo.writeKey}' -H 'Content-Type: application/json' -d '{"event":"api_call","usage":{"sku":"tokens","quantity":1.5}}'

Read usage (live: unflushed events count too):
  curl ${base}/v1/usage -H 'Authorization: Bearer ${demo.readKey}'

Open the dashboard and paste the read key:
  ${base}/dashboard/
`);
	break;
}
