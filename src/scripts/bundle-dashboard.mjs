#!/usr/bin/env node
// Bundles the dashboard's static files (src/dashboard/public) into one JSON module the Worker
// imports (src/dashboard/files.generated.json, git-ignored), each file with its media type and an
// ETag of its bytes. The Worker serves them itself: Workers static assets would put the asset
// router in front of every request, which locally is two more isolate hops on the ingest path.
// Runs from `npm install` (prepare), `npm test`, wrangler's [build] (dev, deploy) and the tests' config.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(import.meta.dirname, "../..");
const source = path.join(root, "src/dashboard/public");
const target = path.join(root, "src/dashboard/files.generated.json");

/** The media types of the files the dashboard has; any other kind of file is refused. */
const TYPES = {
	".html": "text/html; charset=utf-8",
	".js": "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
};

/** Writes the bundle (only when it changed, so a watcher sees no edit) and returns its path. */
export function bundleDashboard() {
	const files = {};
	for (const name of readdirSync(source).sort()) {
		const type = TYPES[path.extname(name)];
		if (type === undefined) throw new Error(`src/dashboard/public/${name}: no media type for this kind of file`);
		const bytes = readFileSync(path.join(source, name));
		files[name] = { type, etag: `"${createHash("sha256").update(bytes).digest("hex").slice(0, 32)}"`, body: bytes.toString("utf8") };
	}
	const json = `${JSON.stringify(files, null, "\t")}\n`;
	if (!existsSync(target) || readFileSync(target, "utf8") !== json) writeFileSync(target, json);
	return target;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) bundleDashboard();
