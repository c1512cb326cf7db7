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
		const requests = Math.ceil(options.events / BATCH);
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
			const status = await postEvents(pipeline, tenant.writeKey, body);
			countStatus(non2xx, status);
			if (status === 202) accepted.set(tenant, accepted.get(tenant)! + BATCH);
			if (r % 50 === 0) progress.update(share((0.8 * r) / requests), `${label}: sending`);
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
			progress.update(share(0.8 + (0.2 * (tenants.length - pending.size)) / tenants.length), `${label}: waiting for /v1/usage`);
			if (pending.size > 0) await sleep(50);
		}
		const visible = performance.now();
		const used = cpu.stop();
		const events = [...accepted.values()].reduce((a, b) => a + b, 0);
		const ids = new Set(tenants.map((tenant) => tenant.id));
		const rpcs =
			(await control.operations()).tenants.filter((t) => ids.has(t.tenant)).reduce((sum, t) => sum + t.rpc_calls, 0) - flushes;
		runs.push({
			tenants: count,
			events,
			batch: BATCH,
			senders: options.senders,
			seconds: (visible - start) / 1000,
			eventsPerSecond: events / ((visible - start) / 1000),
			sendSeconds: (sent - start) / 1000,
			settleSeconds: (visible - sent) / 1000,
			aggregatorRpcs: rpcs,
			eventsPerRpc: events / rpcs,
			cpu: used,
			sendCpu: sendUsed,
			non2xx,
		});
	}
	return { runs };
}
