// Where the CPU goes during a measurement: every workerd thread started under this process (from
// /proc, so Linux only; elsewhere nothing is sampled) and the benchmark's own Node process.
import { readdirSync, readFileSync } from "node:fs";

export interface CpuUse {
	wallSeconds: number;
	/** CPU of all workerd processes, in cores (1 = one core busy the whole time). */
	workerdCores: number;
	/** The busiest workerd thread's share of the wall time (1 = never idle). */
	busiestThreadShare: number;
	/** The benchmark's own process (load generator and wrangler's dev server), in cores. */
	benchCores: number;
}

interface Snapshot {
	at: number;
	threads: Map<string, number>;
	bench: NodeJS.CpuUsage;
}

/** Clock ticks per second of /proc's utime and stime: 100 on Linux. */
const TICK_MS = 10;

function statOf(path: string): { comm: string; fields: string[] } | undefined {
	try {
		const stat = readFileSync(path, "utf8");
		const close = stat.lastIndexOf(")");
		return { comm: stat.slice(stat.indexOf("(") + 1, close), fields: stat.slice(close + 2).split(" ") };
	} catch {
		return undefined;
	}
}

/** Processes descended from this one whose name is workerd. */
function workerdPids(): number[] {
	let entries: string[];
	try {
		entries = readdirSync("/proc").filter((entry) => /^\d+$/.test(entry));
	} catch {
		return [];
	}
	const parents = new Map<number, { ppid: number; comm: string }>();
	for (const entry of entries) {
		const stat = statOf(`/proc/${entry}/stat`);
		if (stat) parents.set(Number(entry), { ppid: Number(stat.fields[1]), comm: stat.comm });
	}
	const descends = (pid: number): boolean => {
		for (let p = parents.get(pid)?.ppid, hops = 0; p !== undefined && p > 1 && hops < 10; p = parents.get(p)?.ppid, hops++)
			if (p === process.pid) return true;
		return false;
	};
	return [...parents].filter(([pid, { comm }]) => comm === "workerd" && descends(pid)).map(([pid]) => pid);
}

function snapshot(): Snapshot {
	const threads = new Map<string, number>();
	for (const pid of workerdPids()) {
		let tasks: string[] = [];
		try {
			tasks = readdirSync(`/proc/${pid}/task`);
		} catch {
			continue;
		}
		for (const tid of tasks) {
			const stat = statOf(`/proc/${pid}/task/${tid}/stat`);
			// utime and stime are the 14th and 15th fields; `fields` starts at the 3rd.
			if (stat) threads.set(`${pid}/${tid}`, (Number(stat.fields[11]) + Number(stat.fields[12])) * TICK_MS);
		}
	}
	return { at: performance.now(), threads, bench: process.cpuUsage() };
}

/** Starts sampling; `stop()` gives the CPU used since, or undefined where /proc has no workerd. */
export function sampleCpu(): { stop(): CpuUse | undefined } {
	const start = snapshot();
	return {
		stop() {
			const end = snapshot();
			if (end.threads.size === 0) return undefined;
			const wallMs = end.at - start.at;
			let total = 0;
			let busiest = 0;
			for (const [thread, ms] of end.threads) {
				const used = ms - (start.threads.get(thread) ?? 0);
				total += used;
				busiest = Math.max(busiest, used);
			}
			const bench = process.cpuUsage(start.bench);
			return {
				wallSeconds: wallMs / 1000,
				workerdCores: total / wallMs,
				busiestThreadShare: Math.min(1, busiest / wallMs),
				benchCores: (bench.user + bench.system) / 1000 / wallMs,
			};
		},
	};
}
