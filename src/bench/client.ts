// 6. Client overhead: nanoseconds per call of Meterline's track() beside posthog-node's capture()
// and @segment/analytics-node's track(), timed by tinybench in one process against one local sink.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Analytics as Segment } from "@segment/analytics-node";
import { createAnalytics } from "@meterline/client";
import { PostHog } from "posthog-node";
import { Bench } from "tinybench";
import type { Progress } from "./progress.ts";

export interface ClientSdkResult {
	name: string;
	call: string;
	/** Per round: tinybench's mean iteration time divided by the calls per iteration. */
	nsPerCallByRound: number[];
	/** The median round. */
	nsPerCall: number;
	/** tinybench's relative margin of error of that round, in %. */
	rmePercent: number;
	errors: number;
}

export interface ClientResult {
	rounds: number;
	iterationsPerRound: number;
	callsPerIteration: number;
	sdks: ClientSdkResult[];
	/** The better (cheaper) of posthog-node and Segment. */
	bestPeer: string;
	/** How many times cheaper Meterline's track() is than the best peer. */
	ratio: number;
	notes: string[];
}

interface Sdk {
	name: string;
	call: string;
	/** One call of the SDK's hot path. */
	track(): void;
	/** Sends everything it holds and waits for the sink to answer. */
	drain(): Promise<void>;
	close(): Promise<void>;
	errors: number;
}

const PROPERTIES = { path: "/pricing", plan: "pro", referrer: "https://example.com/" };

/** A sink answering every request as the real services would: 200 {"status":1} or {"success":true}. */
async function startSink(): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
	let requests = 0;
	const server = createServer((request, response) => {
		request.resume();
		request.on("end", () => {
			requests++;
			// Segment's API lives under /v1/ (as does Meterline's /v1/events); PostHog's does not.
			const body = request.url?.startsWith("/v1/") ? '{"success":true}' : '{"status":1}';
			response.writeHead(200, { "content-type": "application/json" }).end(body);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}`,
		requests: () => requests,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

function meterline(url: string): Sdk {
	const kept: Promise<unknown>[] = [];
	const sdk: Sdk = {
		name: "Meterline",
		call: "track()",
		errors: 0,
		track: () => analytics.track("page_view", PROPERTIES),
		async drain() {
			analytics.flush();
			while (kept.length > 0) await Promise.all(kept.splice(0));
		},
		close: () => sdk.drain(),
	};
	// A ctx whose waitUntil just keeps the promise, as a Worker's would.
	const ctx = { waitUntil: (promise: Promise<unknown>) => void kept.push(promise) };
	const analytics = createAnalytics(
		ctx,
		{ endpoint: url, writeKey: "ml_w_bench" },
		{ userId: "user-1", onError: () => void sdk.errors++ },
	);
	return sdk;
}

function posthog(url: string): Sdk {
	const client = new PostHog("phc_bench", { host: url });
	const sdk: Sdk = {
		name: "posthog-node",
		call: "capture()",
		errors: 0,
		track: () => client.capture({ distinctId: "user-1", event: "page_view", properties: PROPERTIES }),
		drain: () => client.flush(),
		close: () => client.shutdown(),
	};
	client.on("error", () => void sdk.errors++);
	return sdk;
}

function segment(url: string): Sdk {
	const client = new Segment({ writeKey: "bench", host: url });
	const sdk: Sdk = {
		name: "@segment/analytics-node",
		call: "track()",
		errors: 0,
		track: () => client.track({ userId: "user-1", event: "page_view", properties: PROPERTIES }),
		drain: () => client.flush(),
		close: () => client.closeAndFlush(),
	};
	client.on("error", () => void sdk.errors++);
	return sdk;
}

export async function measureClient(
	progress: Progress,
	options: { rounds: number; iterations: number; callsPerIteration: number },
): Promise<ClientResult> {
	const sink = await startSink();
	const sdks = [meterline(sink.url), posthog(sink.url), segment(sink.url)];
	const byRound = new Map<Sdk, { ns: number; rme: number }[]>(sdks.map((sdk) => [sdk, []]));
	const calls = options.callsPerIteration;
	try {
		for (let round = 0; round < options.rounds; round++) {
			// `time: 0` makes `iterations` the exact count: each iteration is `calls` calls, and every
			// SDK's queue is sent and answered between iterations (untimed), so none piles up.
			const bench = new Bench({ iterations: options.iterations, time: 0, warmupIterations: 20, warmupTime: 0, throws: true });
			// Rotate the order each round, so no SDK always runs first (or last) in a warm process.
			const order = sdks.map((_, i) => sdks[(i + round) % sdks.length]!);
			for (const sdk of order) {
				bench.add(
					sdk.name,
					() => {
						for (let i = 0; i < calls; i++) sdk.track();
					},
					{ beforeEach: () => sdk.drain(), afterAll: () => sdk.drain() },
				);
			}
			let finished = 0;
			bench.addEventListener("cycle", () =>
				progress.update((round + ++finished / sdks.length) / options.rounds, `round ${round + 1}/${options.rounds}`),
			);
			await bench.run();
			for (const sdk of sdks) {
				const result = bench.getTask(sdk.name)!.result;
				if (result.state !== "completed") throw new Error(`${sdk.name}: tinybench ended ${result.state}`);
				byRound.get(sdk)!.push({ ns: (result.latency.mean * 1e6) / calls, rme: result.latency.rme });
			}
		}
	} finally {
		for (const sdk of sdks) await sdk.close().catch(() => undefined);
		await sink.close();
	}
	const results: ClientSdkResult[] = sdks.map((sdk) => {
		const rounds = byRound.get(sdk)!;
		const median = [...rounds].sort((a, b) => a.ns - b.ns)[Math.floor(rounds.length / 2)]!;
		return {
			name: sdk.name,
			call: sdk.call,
			nsPerCallByRound: rounds.map((r) => r.ns),
			nsPerCall: median.ns,
			rmePercent: median.rme,
			errors: sdk.errors,
		};
	});
	const [ours, ...peers] = results;
	const best = peers.reduce((a, b) => (b.nsPerCall < a.nsPerCall ? b : a));
	return {
		rounds: options.rounds,
		iterationsPerRound: options.iterations,
		callsPerIteration: calls,
		sdks: results,
		bestPeer: best.name,
		ratio: best.nsPerCall / ours!.nsPerCall,
		notes: [
			`Each tinybench iteration makes ${calls} calls; between iterations (untimed) every SDK sends what it holds to the same local sink and waits for its answers, so the figures are the caller's synchronous cost per call, with each SDK's default batching.`,
			"Meterline uses the endpoint transport and a ctx whose waitUntil keeps the promise; all three send the same event name, user and properties.",
		],
	};
}
