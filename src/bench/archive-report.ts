// The report's section 9, the archive's lines under the cost table, and the archive goal
// (report.ts and goals.ts stay under 300 lines).
import type { ArchiveKind, ArchiveResult } from "./archive.ts";
import { PRICES } from "./cost.ts";
import { busy, int, num, table, usd } from "./format.ts";
import type { Goal } from "./results.ts";
import { totalOf } from "./support.ts";

/** End-to-end throughput with the archive on, as a share of off's. */
export const ARCHIVE_THROUGHPUT_GOAL = 0.75;

const LABELS: Record<ArchiveKind, string> = { off: "off", archive: "archive", forward: "archive + 1 webhook" };
const seconds = (value: number | null) => (value === null ? "–" : num(value, 2));
const pct = (ratio: number) => `${Math.round(ratio * 100)}%`;

export function renderArchive(result: ArchiveResult): string[] {
	const { off, archive, forward } = result;
	const events = result.runs[0]?.events ?? 0;
	const summary = (label: string, ratio: number, accepted: number) =>
		`${label} × ${num(ratio, 2)} end to end, × ${num(accepted, 2)} accepted while sending`;
	return [
		`9. Archive and forwarding: R2 archive off, on, and on with one forwarding destination; one fresh tenant per run, ${int(events)} events in batches of ${result.runs[0]?.batch ?? 100}, ARCHIVE_INTERVAL_MS = FLUSH_INTERVAL_MS = ${int(result.intervalMs)}, runs alternating`,
		table(
			[
				"archive",
				"run",
				"events",
				"seconds",
				"e2e events/s",
				"accepted/s (sending)",
				"archived s",
				"forwarded s",
				"parts",
				"bytes/event",
				"SQLite rows/event",
				"workerd µs/event",
				"workerd thread (sending)",
				"non-2xx",
			],
			result.runs.map((run) => [
				LABELS[run.kind],
				String(run.round),
				int(run.events),
				num(run.seconds, 2),
				int(run.eventsPerSecond),
				int(run.acceptedPerSecond),
				seconds(run.archivedSeconds),
				seconds(run.forwardedSeconds),
				run.kind === "off" ? "–" : int(run.parts),
				run.kind === "off" ? "–" : num(run.archiveBytes / run.events, 1),
				num(run.sqliteRowsPerEvent, 4),
				run.workerdUsPerEvent === undefined ? "n/a" : int(run.workerdUsPerEvent),
				busy(run.sendCpu),
				String(totalOf(run.non2xx)),
			]),
		),
		`   mean of the ${off.runs} runs per kind: end to end ${int(off.eventsPerSecond)} events/s off, ${int(archive.eventsPerSecond)} with the archive${forward ? `, ${int(forward.eventsPerSecond)} with the archive and forwarding` : ""}; accepted while sending ${int(off.acceptedPerSecond)}, ${int(archive.acceptedPerSecond)}${forward ? `, ${int(forward.acceptedPerSecond)}` : ""}`,
		`   ${summary("archive:", result.throughputRatio, result.acceptedRatio)}${forward ? `; ${summary("archive + forwarding:", result.forwardThroughputRatio!, result.forwardAcceptedRatio!)}` : ""}`,
		result.forwardUnavailable === null
			? "   forwarding: one webhook destination per tenant (src/forward/, a local HTTP server answering 200); forwarded s = first POST until it had every event"
			: `   forwarding: not measured, not available (${result.forwardUnavailable})`,
		`   SQLite rows per event ${num(off.sqliteRowsPerEvent, 4)} off, ${num(archive.sqliteRowsPerEvent, 4)} with the archive (one pending_archive row per ingest RPC, deleted once archived)${forward ? `, ${num(forward.sqliteRowsPerEvent, 4)} with forwarding` : ""}`,
		`   archive: ${num(result.bytesPerEvent, 1)} bytes per event as snappy Parquet (${int(result.eventsPerPart)} events per part here; repetitive benchmark events, a floor); ${int(result.jsonCharsPerEvent)} JSON characters per event pending, so a busy tenant's 4 MB part holds ${int(result.fullPartEvents)} events`,
		...archiveCostLines(result),
		"",
	];
}

/** The archive's bytes and R2 cost per million events, under the cost table. */
export function archiveCostLines(result: ArchiveResult): string[] {
	return [
		`   R2 per million events: ${int(result.partsPerMillionEvents)} Class A writes (${usd(result.r2.classAUsdPerMillionEvents)}) + ${num((result.bytesPerEvent * 1e6) / 1e9, 3)} GB of Parquet at ${num(result.bytesPerEvent, 1)} bytes/event (${usd(result.r2.storageUsdPerMillionEventsMonth)} per month kept)`,
		`   (a tenant sending fewer than ${int(result.fullPartEvents)} events per ARCHIVE_INTERVAL_MS (60 s) writes one part per interval instead: ${usd(PRICES.r2ClassA.usd)} ÷ events per minute per million events, e.g. ${usd(PRICES.r2ClassA.usd / 1000)} at 1,000 a minute; reads are Class B and not priced)`,
	];
}

export function archiveGoal(result: ArchiveResult): Goal {
	const { off, archive } = result;
	const met = result.throughputRatio >= ARCHIVE_THROUGHPUT_GOAL;
	const parts: string[] = [];
	if (!met) {
		if (archive.workerdUsPerEvent !== undefined && off.workerdUsPerEvent !== undefined)
			parts.push(
				`workerd's CPU per event is ${int(archive.workerdUsPerEvent)} µs with the archive against ${int(off.workerdUsPerEvent)} µs without: each ingest RPC also writes its events' JSON to pending_archive, and every alarm reads them back, encodes a snappy Parquet part, writes it to R2 and deletes the rows, on the one workerd thread that is also producer and consumer`,
			);
		if (archive.busiestThreadShare !== undefined && off.busiestThreadShare !== undefined)
			parts.push(
				`that thread was busy ${pct(archive.busiestThreadShare)} while sending with the archive, ${pct(off.busiestThreadShare)} without`,
			);
		parts.push(`SQLite rows per event ${num(archive.sqliteRowsPerEvent, 4)} against ${num(off.sqliteRowsPerEvent, 4)}`);
		const rates = (kind: ArchiveKind) => result.runs.filter((run) => run.kind === kind).map((run) => run.eventsPerSecond);
		const spread = (kind: ArchiveKind) => (Math.max(...rates(kind)) - Math.min(...rates(kind))) / off.eventsPerSecond;
		const noise = Math.max(spread("off"), spread("archive"));
		if (noise > 1 - result.throughputRatio)
			parts.push(
				`but the runs of one kind differ by up to ${pct(noise)} of off's rate, more than the gap: the shortfall is within this machine's noise`,
			);
	}
	return {
		name: "archive: end-to-end throughput",
		target: `≥ ${pct(ARCHIVE_THROUGHPUT_GOAL)} of the throughput with the archive off (archiving costs ≤ ${pct(1 - ARCHIVE_THROUGHPUT_GOAL)}; batch 100, one tenant)`,
		actual: `${pct(result.throughputRatio)} (${int(archive.eventsPerSecond)} vs ${int(off.eventsPerSecond)} events/s, mean of ${off.runs} runs each)`,
		met,
		bottleneck: met ? undefined : `${parts.join("; ")}.`,
	};
}
