// The part of autocannon's API the benchmark uses (the package ships no types).
declare module "autocannon" {
	interface Histogram {
		average: number;
		mean: number;
		stddev: number;
		min: number;
		max: number;
		total: number;
		p50: number;
		p90: number;
		p97_5: number;
		p99: number;
	}

	interface Result {
		latency: Histogram;
		requests: Histogram;
		throughput: Histogram;
		duration: number;
		errors: number;
		timeouts: number;
		non2xx: number;
		"2xx": number;
		statusCodeStats: Record<string, { count: number }>;
	}

	interface Options {
		url: string;
		method?: string;
		connections?: number;
		duration?: number;
		amount?: number;
		timeout?: number;
		headers?: Record<string, string>;
		body?: string | Buffer;
	}

	interface Instance extends PromiseLike<Result> {
		on(event: "tick", listener: (tick: { counter: number; bytes: number }) => void): this;
		stop(): void;
	}

	function autocannon(options: Options): Instance;
	export default autocannon;
}
