// 9. Archive and forwarding: what keeping every accepted event costs. The same traffic (batches of
// 100, one fresh tenant per run) goes end to end through a pipeline without the R2 archive (and
// without the forwarding queue), one with the archive, and one with the archive and one webhook
// forwarding destination, alternating off, archive, forward, … to spread the machine's noise; then
// the archive's Parquet bytes per event, from GET /v1/export, and its R2 cost per million events.
import { hasForwardQueue, startLocalPipeline, type LocalPipeline, type TenantKeys } from "../scripts/local-pipeline.ts";
import { PRICES } from "./cost.ts";
import type { CpuUse } from "./cpu.ts";
import { deliver } from "./e2e.ts";
import { cpuPerEvent } from "./format.ts";
import type { Progress } from "./progress.ts";
import { batchBody, benchEvent, ControlPlane, queuedForm, sleep, type StatusCounts } from "./support.ts";
import { startWebhookSink, type WebhookSink } from "./webhook-sink.ts";

export type ArchiveKind = "off" | "archive" | "forward";

export interface ArchiveRun {
	kind: ArchiveKind;
	/** 1-based: the runs alternate off, archive(, forward), off, archive(, forward), … */
	round: number;
	events: number;
	batch: number;
	senders: number;
	/** End to end, as measurement 2: first POST until every event is in /v1/usage. */
	seconds: number;
	eventsPerSecond: number;
	sendSeconds: number;
	settleSeconds: number;
	/** Ingest: events accepted per second of sending, the pipeline consuming at the same time. */
	acceptedPerSecond: number;
	/** First POST until the aggregator had archived every event (GET /v1/metrics archived), or null (off). */
	archivedSeconds: number | null;
	/** First POST until the webhook destination had every event, or null (not forwarding). */
	forwardedSeconds: number | null;
	/** The tenant's parts in R2 (GET /v1/export) and their bytes. */
	parts: number;
	archiveBytes: number;
	/** The tenant's aggregator SQLite rows, from before the traffic until after the archive and a last flush. */
	sqliteRowsWritten: number;
	sqliteRowsPerEvent: number;
	workerdUsPerEvent?: number;
	cpu?: CpuUse;
	sendCpu?: CpuUse;
	non2xx: StatusCounts;
}

/** The mean of a kind's runs. */
export interface ArchiveSummary {
	kind: ArchiveKind;
	runs: number;
	eventsPerSecond: number;
	acceptedPerSecond: number;
	sqliteRowsPerEvent: number;
	workerdUsPerEvent?: number;
	busiestThreadShare?: number;
}

export interface ArchiveResult {
	intervalMs: number;
	flushIntervalMs: number;
	runs: ArchiveRun[];
	off: ArchiveSummary;
	archive: ArchiveSummary;
	forward: ArchiveSummary | null;
	/** Why forwarding was not measured, or null when it was. */
	forwardUnavailable: string | null;
	/** Mean end-to-end events/s with the archive ÷ without; accepted events/s likewise. */
	throughputRatio: number;
	acceptedRatio: number;
	forwardThroughputRatio: number | null;
	forwardAcceptedRatio: number | null;
	/** Parquet bytes per archived event, and events per part, over the archive and forward runs. */
	bytesPerEvent: number;
	eventsPerPart: number;
	/** JSON characters each event takes in the aggregator's pending_archive rows (its queued form). */
	jsonCharsPerEvent: number;
	/** Production part model: a busy tenant's parts hold PART_CHARS of pending JSON. */
	fullPartEvents: number;
	partsPerMillionEvents: number;
	r2: { classAUsdPerMillionEvents: number; storageUsdPerMillionEventsMonth: number };
	notes: string[];
}

export interface ArchiveOptions {
	events: number;
	senders: number;
	rounds: number;
}

const BATCH = 100;
const WARM_UP_EVENTS = 2_000;
/** Short enough that the archive writes (and forwards) while the events are being sent. */
const INTERVAL_MS = 1000;
/** src/aggregator/archive.ts PART_CHARS: the JSON characters a sealed range (one part per date) holds at most. */
const PART_CHARS = 4_000_000;
const SIGNING_SECRET = "bench-webhook-signing-secret-0123456789";

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

async function tenantOps(control: ControlPlane, tenant: TenantKeys) {
	const mine = (await control.operations()).tenants.find((t) => t.tenant === tenant.id);
	return mine ?? Promise.reject(new Error(`GET /v1/admin/operations has no tenant ${tenant.id}`));
}

/** The tenant's archive parts around today, every page of GET /v1/export. */
async function archiveParts(control: ControlPlane, tenant: TenantKeys): Promise<{ parts: number; bytes: number }> {
	const date = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
	let parts = 0;
	let bytes = 0;
	let cursor: string | null = null;
	do {
		const query: string = `from=${date(-1)}&to=${date(1)}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
		const page: { files: { bytes: number }[]; nextCursor: string | null } = await control.json(`/v1/export?${query}`, {
			key: tenant.readKey,
		});
		parts += page.files.length;
		bytes += page.files.reduce((sum, file) => sum + file.bytes, 0);
		cursor = page.nextCursor;
	} while (cursor !== null);
	return { parts, bytes };
}

async function createWebhook(control: ControlPlane, tenant: TenantKeys, sink: WebhookSink): Promise<string> {
	const body = JSON.stringify({ kind: "webhook", url: sink.url, signingSecret: SIGNING_SECRET });
	return (await control.json<{ id: string }>("/v1/destinations", { method: "POST", key: tenant.readKey, body })).id;
}

/** Waits until the aggregator archived `events` and, with a destination, the webhook had them; seconds since `since`. */
async function settleArchive(control: ControlPlane, tenant: TenantKeys, events: number, since: number, forwarded?: () => number) {
	let archivedAt: number | null = null;
	let forwardedAt: number | null = forwarded ? null : 0;
	const deadline = performance.now() + 120_000;
	while (archivedAt === null || forwardedAt === null) {
		if (performance.now() > deadline) throw new Error(`${tenant.id}: events still not archived or forwarded after 2 minutes`);
		if (archivedAt === null && (await control.metrics(tenant)).archived >= events) archivedAt = performance.now();
		if (forwardedAt === null && forwarded!() >= events) forwardedAt = performance.now();
		if (archivedAt === null || forwardedAt === null) await sleep(50);
	}
	return { archivedSeconds: (archivedAt - since) / 1000, forwardedSeconds: forwarded ? (forwardedAt - since) / 1000 : null };
}

export async function measureArchive(progress: Progress, options: ArchiveOptions): Promise<ArchiveResult> {
	const forwardUnavailable = hasForwardQueue() ? null : "wrangler.toml binds no FORWARD queue";
	const kinds: ArchiveKind[] = forwardUnavailable === null ? ["off", "archive", "forward"] : ["off", "archive"];
	const order = Array.from({ length: options.rounds }, () => kinds).flat();
	const vars = { ARCHIVE_INTERVAL_MS: String(INTERVAL_MS), FLUSH_INTERVAL_MS: String(INTERVAL_MS) };
	const pipelines = new Map<ArchiveKind, LocalPipeline>();
	let sink: WebhookSink | undefined;
	const share = 0.9 / order.length;
	const runs: ArchiveRun[] = [];
	try {
		if (kinds.includes("forward")) sink = await startWebhookSink();
		for (const [index, kind] of kinds.entries()) {
			progress.update((0.1 * index) / kinds.length, `starting the pipeline: ${kind}`);
			const pipeline = await startLocalPipeline({
				tenantRateLimit: 1_000_000_000,
				archive: kind !== "off",
				forward: kind === "forward",
				vars: kind === "forward" ? { ...vars, DESTINATIONS_KEY: `bench-${crypto.randomUUID()}` } : vars,
			});
			pipelines.set(kind, pipeline);
			// An untimed warm-up, so no kind's first run pays for compiling the Worker's hot paths.
			const control = new ControlPlane(pipeline);
			const tenant = await control.createTenant(`bench-archive-warm-${kind}`);
			const destination = kind === "forward" ? await createWebhook(control, tenant, sink!) : undefined;
			const warm = await deliver(control, [tenant], {
				requests: WARM_UP_EVENTS / BATCH,
				batch: BATCH,
				senders: options.senders,
				sku: "archive-warm",
				body: () => batchBody(BATCH, "archive-warm"),
				label: `${kind} warm-up`,
				step: () => undefined,
			});
			if (kind !== "off")
				await settleArchive(control, tenant, warm.events, 0, destination ? () => sink!.received(destination) : undefined);
		}
		for (const [index, kind] of order.entries()) {
			const round = Math.floor(index / kinds.length) + 1;
			const label = `${kind === "off" ? "archive off" : kind === "archive" ? "archive on" : "archive + forwarding"}, run ${round}`;
			const step = (fraction: number, detail: string) => progress.update(0.1 + (index + fraction) * share, `${label}: ${detail}`);
			step(0, "creating the tenant");
			const control = new ControlPlane(pipelines.get(kind)!);
			const tenant = await control.createTenant(`bench-archive-${kind}-${round}`);
			const destination = kind === "forward" ? await createWebhook(control, tenant, sink!) : undefined;
			const before = await tenantOps(control, tenant);
			const sku = `archive-${kind}-${round}`;
			const body = batchBody(BATCH, sku);
			const run = await deliver(control, [tenant], {
				requests: Math.ceil(options.events / BATCH),
				batch: BATCH,
				senders: options.senders,
				sku,
				body: () => body,
				label,
				step: (fraction, detail) => step(fraction * 0.9, detail),
			});
			let settled = { archivedSeconds: null as number | null, forwardedSeconds: null as number | null };
			if (kind !== "off") {
				step(0.9, "waiting for the archive");
				// deliver() returned when the events were visible: run.seconds after its first POST.
				const since = performance.now() - run.seconds * 1000;
				settled = await settleArchive(
					control,
					tenant,
					run.events,
					since,
					destination ? () => sink!.received(destination) : undefined,
				);
			}
			// One more flush, outside the timing, so every kind's rows are counted through a flush.
			await control.flush(tenant);
			const after = await tenantOps(control, tenant);
			const stored = kind === "off" ? { parts: 0, bytes: 0 } : await archiveParts(control, tenant);
			const sqlite = after.sqlite_rows_written - before.sqlite_rows_written;
			runs.push({
				kind,
				round,
				events: run.events,
				batch: BATCH,
				senders: options.senders,
				seconds: run.seconds,
				eventsPerSecond: run.events / run.seconds,
				sendSeconds: run.sendSeconds,
				settleSeconds: run.settleSeconds,
				acceptedPerSecond: run.events / run.sendSeconds,
				...settled,
				parts: stored.parts,
				archiveBytes: stored.bytes,
				sqliteRowsWritten: sqlite,
				sqliteRowsPerEvent: sqlite / run.events,
				...(run.cpu && { workerdUsPerEvent: cpuPerEvent(run.cpu, run.events) }),
				cpu: run.cpu,
				sendCpu: run.sendCpu,
				non2xx: run.non2xx,
			});
		}
	} finally {
		for (const pipeline of pipelines.values()) await pipeline.stop();
		await sink?.close();
	}
	if (sink && sink.malformed > 0) throw new Error(`the webhook received ${sink.malformed} malformed deliveries`);

	const summary = (kind: ArchiveKind): ArchiveSummary => {
		const mine = runs.filter((run) => run.kind === kind);
		const cpus = mine.flatMap((run) => (run.workerdUsPerEvent === undefined ? [] : [run.workerdUsPerEvent]));
		const shares = mine.flatMap((run) => (run.sendCpu ? [run.sendCpu.busiestThreadShare] : []));
		return {
			kind,
			runs: mine.length,
			eventsPerSecond: mean(mine.map((run) => run.eventsPerSecond)),
			acceptedPerSecond: mean(mine.map((run) => run.acceptedPerSecond)),
			sqliteRowsPerEvent: mean(mine.map((run) => run.sqliteRowsPerEvent)),
			...(cpus.length === mine.length && { workerdUsPerEvent: mean(cpus) }),
			...(shares.length === mine.length && { busiestThreadShare: mean(shares) }),
		};
	};
	const off = summary("off");
	const archive = summary("archive");
	const forward = kinds.includes("forward") ? summary("forward") : null;
	const archived = runs.filter((run) => run.kind !== "off");
	const totalEvents = archived.reduce((sum, run) => sum + run.events, 0);
	const totalBytes = archived.reduce((sum, run) => sum + run.archiveBytes, 0);
	const totalParts = archived.reduce((sum, run) => sum + run.parts, 0);
	const sample = Array.from({ length: BATCH }, (_, i) => benchEvent(i, { sku: "archive-sku" }));
	// keepForArchive counts each event's JSON and a separating comma.
	const jsonCharsPerEvent = mean(sample.map((event) => JSON.stringify(queuedForm(event)).length + 1));
	const fullPartEvents = Math.floor(PART_CHARS / jsonCharsPerEvent);
	const partsPerMillionEvents = 1e6 / fullPartEvents;
	const bytesPerEvent = totalBytes / totalEvents;
	return {
		intervalMs: INTERVAL_MS,
		flushIntervalMs: INTERVAL_MS,
		runs,
		off,
		archive,
		forward,
		forwardUnavailable,
		throughputRatio: archive.eventsPerSecond / off.eventsPerSecond,
		acceptedRatio: archive.acceptedPerSecond / off.acceptedPerSecond,
		forwardThroughputRatio: forward ? forward.eventsPerSecond / off.eventsPerSecond : null,
		forwardAcceptedRatio: forward ? forward.acceptedPerSecond / off.acceptedPerSecond : null,
		bytesPerEvent,
		eventsPerPart: totalEvents / Math.max(1, totalParts),
		jsonCharsPerEvent,
		fullPartEvents,
		partsPerMillionEvents,
		r2: {
			classAUsdPerMillionEvents: (partsPerMillionEvents * PRICES.r2ClassA.usd) / PRICES.r2ClassA.per,
			storageUsdPerMillionEventsMonth: ((bytesPerEvent * 1e6) / 1e9) * PRICES.r2Storage.usd,
		},
		notes: [
			`Each run is a fresh single tenant, ${BATCH} events per POST from ${options.senders} senders, on one of ${kinds.length} pipelines started side by side from wrangler.toml: without the [[r2_buckets]] ARCHIVE block and the FORWARD producer (off), with the archive, and ${forwardUnavailable === null ? "with the archive and the FORWARD queue, each tenant with one webhook destination on a local HTTP server (forward)" : `no forwarding (${forwardUnavailable})`}. The kinds alternate; each kind's figure is the mean of its ${options.rounds} runs, after one untimed warm-up per pipeline.`,
			`Every pipeline runs with ARCHIVE_INTERVAL_MS = FLUSH_INTERVAL_MS = ${INTERVAL_MS} ms, so the alarm archives (and forwards) about every second while the events are sent; the aggregator arms its alarm after an ingest at the flush interval only.`,
			"End to end is measurement 2's: first POST until every event is in /v1/usage. Archived and forwarded s run from the same first POST until GET /v1/metrics archived, and the webhook's count, reach the events sent.",
			`Bytes per event: the parts GET /v1/export lists for the tenant (snappy Parquet), over its archived events. R2 cost: a busy tenant's part holds ${PART_CHARS / 1e6} M characters of pending JSON (src/aggregator/archive.ts PART_CHARS), ${Math.round(jsonCharsPerEvent)} per event in this traffic, one Class A PutObject each; storage is priced for one month kept at ${PRICES.r2Storage.usd} $/GB-month (GB = 10^9 bytes). Reads (export, backfill) are Class B and not priced.`,
			"The benchmark's events repeat (5 event names, 100 users, 20 paths, one request body per run; only the server-assigned ids and timestamps differ), so Parquet's dictionaries compress them far better than varied production traffic: the bytes per event, and the storage cost, are a floor.",
		],
	};
}
