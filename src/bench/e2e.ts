// 2. End-to-end throughput: events per second from the first POST until every event is in
// /v1/usage, for one tenant and for 100, in batches of 100 from several concurrent senders.
import type { LocalPipeline, TenantKeys } from "../scripts/local-pipeline.ts";
import { sampleCpu, type CpuUse } from "./cpu.ts";
import type { Progress } from "./progress.ts";
import { batchBody, ControlPlane, countStatus, lanes, postEvents, sleep, type StatusCounts } from "./support.ts";

export interface EndToEndRun {
	tenants: number;
	events: number;
	batch: number;
	senders: number;
	seconds: number;
	eventsPerSecond: number;
	/** From the first POST until the last answer. */
	sendSeconds: number;
	/** From the last answer until every event was in /v1/usage. */
	settleSeconds: number;
	/** Aggregator RPCs the consumer made for these events (the benchmark's flush calls left out). */
	aggregatorRpcs: number;
	eventsPerRpc: number;
	/** CPU over the whole run, and over the sending only. */
	cpu?: CpuUse;
	sendCpu?: CpuUse;
	non2xx: StatusCounts;
}

export interface EndToEndResult {
	runs: EndToEndRun[];
}

const BATCH = 100;
export const E2E_TENANTS = [1, 100] as const;

/** One end-to-end delivery: what was accepted, and when it was sent and visible in /v1/usage. */
export interface Delivery {
	/** Events accepted (202), over every tenant. */
	events: number;
	/** From the first POST until every accepted event was in /v1/usage. */
	seconds: number;
	sendSeconds: number;
	settleSeconds: number;
	/** POST /v1/flush calls made while settling (each is one aggregator RPC). */
	flushes: number;
	cpu?: CpuUse;
	sendCpu?: CpuUse;
	non2xx: StatusCounts;
}

/**
 * Sends `requests` bodies of `batch` events from `senders` concurrent lanes, request r to
 * tenants[r % tenants.length] with body(r), then flushes each tenant and reads its usage of `sku`
 * until every accepted event is there. `step` reports progress (0–0.8 sending, 0.8–1 settling).
 */
export async function deliver(
	control: ControlPlane,
	tenants: TenantKeys[],
	options: {
		requests: number;
		batch: number;
		senders: number;
		sku: string;
		body: (request: number) => string;
		label: string;
		step: (fraction: number, detail: string) => void;
	},
): Promise<Delivery> {
	const { requests, batch, sku, label, step } = options;
	const accepted = new Map<TenantKeys, number>(tenants.map((tenant) => [tenant, 0]));
	const non2xx: StatusCounts = {};

	const start = performance.now();
	const cpu = sampleCpu();
	const sendCpu = sampleCpu();
	let next = 0;
	await lanes(options.senders, async () => {
		const r = next++;
		if (r >= requests) return false;
		const tenant = tenants[r % tenants.length]!;
		const status = await postEvents(control.pipeline, tenant.writeKey, options.body(r));
		countStatus(non2xx, status);
		if (status === 202) accepted.set(tenant, accepted.get(tenant)! + batch);
		if (r % 50 === 0) step((0.8 * r) / requests, "sending");
		return true;
	});
	const sent = performance.now();
	const sendUsed = sendCpu.stop();

	// Flush each tenant and read its usage until every accepted event is there.
	const pending = new Set(tenants);
	let flushes = 0;
	while (pending.size > 0) {
		if (performance.now() - sent > 300_000) throw new Error(`${label}: events still missing from /v1/usage after 5 minutes`);
		const round = [...pending];
		let at = 0;
		await lanes(Math.min(10, round.length), async () => {
			const tenant = round[at++];
			if (!tenant) return false;
			await control.flush(tenant);
			flushes++;
			const events = (await control.usageEvents(tenant, (s) => s === sku)).get(sku) ?? 0;
			if (events >= accepted.get(tenant)!) pending.delete(tenant);
			return true;
		});
		step(0.8 + (0.2 * (tenants.length - pending.size)) / tenants.length, "waiting for /v1/usage");
		if (pending.size > 0) await sleep(50);
	}
	const visible = performance.now();
	return {
		events: [...accepted.values()].reduce((a, b) => a + b, 0),
		seconds: (visible - start) / 1000,
		sendSeconds: (sent - start) / 1000,
		settleSeconds: (visible - sent) / 1000,
		flushes,
		cpu: cpu.stop(),
		sendCpu: sendUsed,
		non2xx,
	};
}

export async function measureEndToEnd(
	pipeline: LocalPipeline,
	progress: Progress,
	options: { events: number; senders: number },
): Promise<EndToEndResult> {
	const control = new ControlPlane(pipeline);
	const runs: EndToEndRun[] = [];
	for (const [index, count] of E2E_TENANTS.entries()) {
		const share = (fraction: number) => (index + fraction) / E2E_TENANTS.length;
		const label = `${count} tenant${count === 1 ? "" : "s"}`;
		progress.update(share(0), `${label}: creating tenants`);
		const tenants: TenantKeys[] = [];
		for (let i = 0; i < count; i++) tenants.push(await control.createTenant(`bench-e2e-${count}-${i}`));
		const sku = `e2e-${count}`;
		const body = batchBody(BATCH, sku);
		const run = await deliver(control, tenants, {
			requests: Math.ceil(options.events / BATCH),
			batch: BATCH,
			senders: options.senders,
			sku,
			body: () => body,
			label,
			step: (fraction, detail) => progress.update(share(fraction), `${label}: ${detail}`),
		});
		const ids = new Set(tenants.map((tenant) => tenant.id));
		const rpcs =
			(await control.operations()).tenants.filter((t) => ids.has(t.tenant)).reduce((sum, t) => sum + t.rpc_calls, 0) - run.flushes;
		runs.push({
			tenants: count,
			events: run.events,
			batch: BATCH,
			senders: options.senders,
			seconds: run.seconds,
			eventsPerSecond: run.events / run.seconds,
			sendSeconds: run.sendSeconds,
			settleSeconds: run.settleSeconds,
			aggregatorRpcs: rpcs,
			eventsPerRpc: run.events / rpcs,
			cpu: run.cpu,
			sendCpu: run.sendCpu,
			non2xx: run.non2xx,
		});
	}
	return { runs };
}
