// The layout's one rule, checked: src/ is the pipeline's stages, and imports only point down the
// stack (a stage never imports one above it or beside it), with no import cycle anywhere.
import { describe, expect, it } from "vitest";

/** Each folder of src/ and its rank: a file may import its own folder or a lower rank only. */
const RANKS: Record<string, number> = {
	shared: 0,
	event: 1,
	// Above event (a meter reads events), below everything that evaluates or serves meters.
	meters: 1.5,
	sinks: 2,
	aggregator: 3,
	consumer: 4,
	http: 5,
	// Forwarding to the tenants' destinations: a sink fed by its own queue, with its routes, so
	// above http (they authenticate) and below read (health and metrics report its destinations).
	forward: 5.5,
	ingest: 6,
	read: 6,
	// Invoices price what the read side reads.
	billing: 6.5,
	admin: 7,
	// The dashboard's files and headers: a client of the public API, importing only shared/.
	dashboard: 7,
	".": 8,
};
/** Packages and tools beside the Worker, and the only Worker folders each may import. */
const OUTSIDE: Record<string, readonly string[]> = { client: ["shared", "event"], bench: ["scripts"], scripts: [] };

const sources = import.meta.glob<string>(["../src/**/*.ts", "!../src/**/dist/**", "!../src/**/*.d.ts"], {
	query: "?raw",
	import: "default",
	eager: true,
});

function folderOf(path: string): string {
	const parts = path.replace(/^\.\.\/src\//, "").split("/");
	return parts.length === 1 ? "." : parts[0]!;
}

/** The src files a file imports, as glob keys ("../src/…ts"). */
function importsOf(path: string, text: string): string[] {
	const found: string[] = [];
	for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
		const segments = path.split("/").slice(0, -1);
		for (const part of spec!.split("/")) {
			if (part === "..") segments.pop();
			else if (part !== ".") segments.push(part);
		}
		found.push(segments.join("/").replace(/\.(js|ts)$/, "") + ".ts");
	}
	return found;
}

const graph = new Map(Object.entries(sources).map(([path, text]) => [path, importsOf(path, text).filter((target) => target in sources)]));

describe("the layout", () => {
	it("finds the Worker's sources", () => {
		expect(graph.size).toBeGreaterThan(60);
		expect([...new Set([...graph.keys()].map(folderOf))].sort()).toEqual(
			[".", ...Object.keys(OUTSIDE), ...Object.keys(RANKS).filter((f) => f !== ".")].sort(),
		);
	});

	it("points every import down the stack, or within its own folder", () => {
		const wrong: string[] = [];
		for (const [path, targets] of graph) {
			const from = folderOf(path);
			for (const target of targets) {
				const to = folderOf(target);
				if (to === from) continue;
				const allowed = from in OUTSIDE ? OUTSIDE[from]!.includes(to) : to in RANKS && RANKS[to]! < RANKS[from]!;
				if (!allowed) wrong.push(`${path} → ${target}`);
			}
		}
		expect(wrong).toEqual([]);
	});

	it("has no import cycle", () => {
		const cycles: string[] = [];
		const state = new Map<string, "open" | "done">();
		const visit = (path: string, trail: string[]) => {
			if (state.get(path) === "done") return;
			if (state.get(path) === "open") {
				cycles.push([...trail.slice(trail.indexOf(path)), path].join(" → "));
				return;
			}
			state.set(path, "open");
			for (const target of graph.get(path) ?? []) visit(target, [...trail, path]);
			state.set(path, "done");
		};
		for (const path of graph.keys()) visit(path, []);
		expect(cycles).toEqual([]);
	});
});
