// Starts the whole pipeline locally from Node (workerd through wrangler's programmatic dev server)
// on a fresh state folder, for the real-SDK tests and the benchmark.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { unstable_dev, type Unstable_DevWorker } from "wrangler";

const root = path.resolve(import.meta.dirname, "../..");
const wranglerBin = path.join(path.dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");

export interface TenantKeys {
	id: string;
	writeKey: string;
	readKey: string;
}

export interface LocalPipeline {
	url: string;
	adminToken: string;
	persistTo: string;
	/** fetch against the pipeline, with an optional bearer key. */
	call(pathname: string, init?: RequestInit & { key?: string }): Promise<Response>;
	createTenant(id: string): Promise<TenantKeys>;
	stop(): Promise<void>;
}

export interface PipelineOptions {
	/** Extra vars, e.g. FLUSH_INTERVAL_MS. */
	vars?: Record<string, string>;
	/**
	 * Requests each tenant may send per period, instead of wrangler.toml's TENANT_RATE_LIMIT (1000
	 * per 60 s), for load tests. The pipeline then starts from a temporary copy of wrangler.toml.
	 */
	tenantRateLimit?: number;
	/**
	 * The raw-event archive: true (the default) binds wrangler.toml's ARCHIVE bucket; false starts
	 * from a temporary copy of wrangler.toml without the `[[r2_buckets]]` block, and (unless
	 * `forward` is true) without a FORWARD queue producer if it has one: an aggregator with neither
	 * keeps no events.
	 */
	archive?: boolean;
	/**
	 * The forwarding queue: by default bound if wrangler.toml has a FORWARD producer and `archive`
	 * is not false; false leaves that producer out of a temporary copy; true when wrangler.toml has
	 * none throws (forwarding is not available).
	 */
	forward?: boolean;
}

const WRANGLER_TOML = path.join(root, "wrangler.toml");

/** Whether wrangler.toml binds the forwarding queue (a `[[queues.producers]]` with binding FORWARD). */
export function hasForwardQueue(toml = readFileSync(WRANGLER_TOML, "utf8")): boolean {
	return tomlBlocks(toml, "[[queues.producers]]", /^binding = "FORWARD"$/m).length > 0;
}

/**
 * The `[[header]]` blocks of `toml` whose body matches `body`: each from its header line to the
 * line before the next blank, comment or table line, as [start, end) character offsets.
 */
function tomlBlocks(toml: string, header: string, body: RegExp): [number, number][] {
	const lines = toml.split("\n");
	const blocks: [number, number][] = [];
	let offset = 0;
	const starts = lines.map((line) => {
		const at = offset;
		offset += line.length + 1;
		return at;
	});
	for (let i = 0; i < lines.length; i++) {
		if (lines[i]!.trim() !== header) continue;
		let j = i + 1;
		while (j < lines.length && lines[j]!.trim() !== "" && !/^\s*[#[]/.test(lines[j]!)) j++;
		const text = lines.slice(i + 1, j).join("\n");
		if (body.test(text)) blocks.push([starts[i]!, j < lines.length ? starts[j]! : toml.length]);
	}
	return blocks;
}

/** `toml` without the one `[[header]]` block whose body matches `body` (none or several throw). */
function withoutBlock(toml: string, header: string, body: RegExp): string {
	const blocks = tomlBlocks(toml, header, body);
	if (blocks.length !== 1) throw new Error(`wrangler.toml: expected one ${header} block with ${body}, found ${blocks.length}`);
	const [start, end] = blocks[0]!;
	return toml.slice(0, start) + toml.slice(end);
}

/**
 * A copy of wrangler.toml in its own temporary folder, with `limit` as TENANT_RATE_LIMIT's limit
 * and without the archive bucket or the forwarding queue when asked; `main`, `migrations_dir` and
 * the build's command and `watch_dir` point into the project.
 */
function customConfig(options: { limit?: number; archive: boolean; forward: boolean }): { config: string; dir: string } {
	let toml = readFileSync(WRANGLER_TOML, "utf8");
	const rewrite = (pattern: RegExp, replacement: string) => {
		const matches = toml.match(new RegExp(pattern.source, "gm"))?.length ?? 0;
		if (matches !== 1) throw new Error(`wrangler.toml: expected one match of ${pattern}, found ${matches}`);
		toml = toml.replace(new RegExp(pattern.source, "m"), replacement);
	};
	rewrite(/^main = ".*"$/, `main = ${JSON.stringify(path.join(root, "src/index.ts"))}`);
	rewrite(/^migrations_dir = ".*"$/, `migrations_dir = ${JSON.stringify(path.join(root, "migrations"))}`);
	rewrite(
		/^command = "node src\/scripts\/bundle-dashboard\.mjs"$/,
		`command = ${JSON.stringify(`node "${path.join(root, "src/scripts/bundle-dashboard.mjs")}"`)}`,
	);
	rewrite(/^watch_dir = ".*"$/, `watch_dir = ${JSON.stringify(path.join(root, "src/dashboard/public"))}`);
	if (options.limit !== undefined)
		rewrite(/^simple = \{ limit = \d+, period = (\d+) \}$/, `simple = { limit = ${Math.floor(options.limit)}, period = $1 }`);
	if (!options.archive) toml = withoutBlock(toml, "[[r2_buckets]]", /^binding = "ARCHIVE"$/m);
	if (!options.forward && hasForwardQueue(toml)) toml = withoutBlock(toml, "[[queues.producers]]", /^binding = "FORWARD"$/m);
	const dir = mkdtempSync(path.join(tmpdir(), "meterline-config-"));
	const config = path.join(dir, "wrangler.toml");
	writeFileSync(config, toml);
	return { config, dir };
}

export async function startLocalPipeline(options: PipelineOptions = {}): Promise<LocalPipeline> {
	const persistTo = mkdtempSync(path.join(tmpdir(), "meterline-"));
	const forwardBound = hasForwardQueue();
	if (options.forward === true && !forwardBound) throw new Error("wrangler.toml binds no FORWARD queue: forwarding is not available");
	const archive = options.archive ?? true;
	const forward = options.forward ?? (archive && forwardBound);
	const custom =
		options.tenantRateLimit === undefined && archive && forward === forwardBound
			? undefined
			: customConfig({ limit: options.tenantRateLimit, archive, forward });
	const config = custom?.config ?? WRANGLER_TOML;
	const removeTemporary = () => {
		process.off("exit", removeTemporary);
		rmSync(persistTo, { recursive: true, force: true });
		if (custom) rmSync(custom.dir, { recursive: true, force: true });
	};
	// If the process exits before stop() (Ctrl-C), the folders still go; first in line, ahead of
	// exit listeners that may throw.
	process.prependListener("exit", removeTemporary);
	const env = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" };
	const migrate = spawnSync(
		process.execPath,
		[wranglerBin, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo, "--config", config],
		{
			cwd: root,
			env,
			encoding: "utf8",
		},
	);
	if (migrate.status !== 0) {
		removeTemporary();
		throw new Error(`D1 migrations failed: ${migrate.stdout}${migrate.stderr}`);
	}
	const adminToken = `admin-${crypto.randomUUID()}`;
	// wrangler's local trace collector (on by default since 4.1xx) streams every invocation's spans
	// and logs into a SQLite Durable Object on the same workerd thread as the pipeline, about a
	// tenth of that thread under load: a dev-time viewer production does not run beside the Worker.
	// The programmatic server reads it from the environment; X_LOCAL_OBSERVABILITY=true keeps it.
	process.env.X_LOCAL_OBSERVABILITY ??= "false";
	let worker: Unstable_DevWorker;
	try {
		worker = await unstable_dev(path.join(root, "src/index.ts"), {
			config,
			persistTo,
			ip: "127.0.0.1",
			vars: { ADMIN_TOKEN: adminToken, ...options.vars },
			logLevel: "error",
			// No file watching: an edit to src/ while a benchmark runs would reload the Worker and
			// lose the local queue's messages (its broker is in memory).
			experimental: { disableExperimentalWarning: true, watch: false },
		});
	} catch (err) {
		removeTemporary();
		throw err;
	}
	const url = `http://${worker.address}:${worker.port}`;
	const call = (pathname: string, init: RequestInit & { key?: string } = {}) => {
		const headers = new Headers(init.headers);
		if (init.key) headers.set("authorization", `Bearer ${init.key}`);
		if (typeof init.body === "string" && !headers.has("content-type")) headers.set("content-type", "application/json");
		return fetch(url + pathname, { ...init, headers });
	};
	return {
		url,
		adminToken,
		persistTo,
		call,
		async createTenant(id) {
			const response = await call("/v1/admin/tenants", { method: "POST", key: adminToken, body: JSON.stringify({ id }) });
			if (response.status !== 201) throw new Error(`creating tenant ${id}: ${response.status} ${await response.text()}`);
			const body = (await response.json()) as { writeKey: string; readKey: string };
			return { id, writeKey: body.writeKey, readKey: body.readKey };
		},
		async stop() {
			await worker.stop();
			removeTemporary();
		},
	};
}
