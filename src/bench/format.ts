// How the report prints numbers and tables.
import type { CpuUse } from "./cpu.ts";

export const int = (n: number) => Math.round(n).toLocaleString("en-US");
export const num = (n: number, digits = 1) => n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
export const usd = (n: number) => (n >= 1 ? `$${n.toFixed(2)}` : n >= 0.01 ? `$${n.toFixed(3)}` : `$${n.toFixed(4)}`);
export const perEvent = (per1000: number) => per1000 / 1000;
export const busy = (cpu: CpuUse | undefined) => (cpu ? `${Math.round(cpu.busiestThreadShare * 100)}%` : "n/a");
/** Microseconds of workerd CPU (all threads) per event. */
export const cpuPerEvent = (cpu: CpuUse, events: number) => (cpu.workerdCores * cpu.wallSeconds * 1e6) / events;

export function table(head: string[], rows: string[][], rightFrom = 1): string {
	const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
	const line = (cells: string[]) =>
		cells
			.map((cell, i) => (i >= rightFrom ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
			.join("  ")
			.trimEnd();
	return [line(head), widths.map((w) => "─".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
