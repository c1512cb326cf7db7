// The plumbing every suite shares: the Worker called through its real fetch handler (or with its
// EVENTS queue replaced), tenants, a frozen clock, a recording queue, injected faults and a D1 outage.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, expect, vi } from "vitest";
import type { EventsMessage, QueuedEvent } from "../src/event/model";
import worker from "../src/index";

// ---- The Worker and tenants ----

export const ADMIN_TOKEN = "test-admin-token";
export const BASE = "https://meterline.test";

let counter = 0;
/** A tenant id no other test uses: storage is shared within a test file. */
export function uniqueTenantId(label = "t"): string {
	return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

export function call(path: string, init: RequestInit & { key?: string; body?: BodyInit | null } = {}): Promise<Response> {
	const headers = new Headers(init.headers);
	if (init.key !== undefined) headers.set("authorization", `Bearer ${init.key}`);
	if (typeof init.body === "string" && !headers.has("content-type")) headers.set("content-type", "application/json");
	return exports.default.fetch(new Request(BASE + path, { ...init, headers }));
}

/** GETs `path` as JSON with `key`, failing loudly on anything but 200. */
export async function getJson<T>(path: string, key: string): Promise<T> {
	const response = await call(path, { key });
	if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
	return response.json<T>();
}

export function postJson(path: string, body: unknown, key?: string, init: RequestInit = {}): Promise<Response> {
	return call(path, { ...init, method: "POST", body: JSON.stringify(body), key });
}

export interface TestTenant {
	id: string;
	writeKey: string;
	readKey: string;
}

export async function createTenant(id = uniqueTenantId()): Promise<TestTenant> {
	const response = await postJson("/v1/admin/tenants", { id, name: `Tenant ${id}` }, ADMIN_TOKEN);
	if (response.status !== 201) throw new Error(`tenant creation failed: ${response.status} ${await response.text()}`);
	const body = await response.json<{ writeKey: string; readKey: string }>();
	return { id, writeKey: body.writeKey, readKey: body.readKey };
}

// ---- A frozen clock: only Date is faked, and timers stay real. The test, the Worker and its
// Durable Objects share one isolate, so they all read the same frozen time ----

/** Freezes Date at `at`; returns it. */
export function freezeClockAt(at: number): number {
	vi.useFakeTimers({ toFake: ["Date"], now: at });
	return at;
}

/** Moves the frozen Date forward by `ms`; returns the new now. */
export function advanceClock(ms: number): number {
	vi.setSystemTime(Date.now() + ms);
	return Date.now();
}

/**
 * Freezes Date with `freeze` before each test of the calling file or describe block, and puts back
 * real timers and every mock after it. The returned clock's `start` is the running test's frozen now.
 */
export function useFrozenClock(freeze: () => number): { readonly start: number } {
	const clock = { start: 0 };
	beforeEach(() => {
		clock.start = freeze();
	});
	afterEach(() => {
		vi.useRealTimers();
		vi.restoreAllMocks();
	});
	return clock;
}

// ---- Injected failures ----

/** The error every injected fault throws, so a test can tell it from a real one. */
export class InjectedFault extends Error {}

// ---- A stand-in for a queue binding that records every send and delegates to the real local
// queue, optionally held behind a gate or failing chosen calls; and the promise that gates it ----

/** A promise the test resolves by hand. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
	let resolve!: () => void;
	const promise = new Promise<void>((r) => (resolve = r));
	return { promise, resolve };
}

export interface RecordingQueueOptions {
	/** Whether call n (from 1) fails; by default none does. */
	fails?: (call: number) => boolean;
	/** A failing call sends for real first and then throws: the queue has the messages but the sender believes it failed (a lost acknowledgement). */
	failAfterSend?: boolean;
	/** Held before each real send until it resolves. */
	gate?: Promise<void>;
	/** The real queue sends go to; env.EVENTS by default. */
	target?: Queue;
}

/**
 * Wraps a real local queue: records the message bodies of every send or sendBatch call, then
 * delegates, after the optional gate, to the real queue. A call chosen by `fails` throws instead,
 * or, with `failAfterSend`, throws after its real send.
 */
export class RecordingQueue implements Queue {
	/** Message bodies per send or sendBatch call, failed ones included, recorded when the call starts. */
	readonly calls: EventsMessage[][] = [];
	/** Calls whose real send resolved. */
	delivered = 0;
	/** Calls that threw to the sender: injected failures, lost acknowledgements and real sends that threw. */
	failed = 0;

	private readonly fails: (call: number) => boolean;
	private readonly failAfterSend: boolean;
	private readonly gate: Promise<void>;
	private readonly target: Queue;

	constructor(options: RecordingQueueOptions = {}) {
		this.fails = options.fails ?? (() => false);
		this.failAfterSend = options.failAfterSend ?? false;
		this.gate = options.gate ?? Promise.resolve();
		this.target = options.target ?? env.EVENTS;
	}

	static failingFirst(times: number): RecordingQueue {
		return new RecordingQueue({ fails: (n) => n <= times });
	}

	static failingAfter(successes: number): RecordingQueue {
		return new RecordingQueue({ fails: (n) => n > successes });
	}

	static alwaysFailing(): RecordingQueue {
		return new RecordingQueue({ fails: () => true });
	}

	/** Sends every call for real, but reports the first `times` as failed. */
	static losingFirstAcks(times: number): RecordingQueue {
		return new RecordingQueue({ fails: (n) => n <= times, failAfterSend: true });
	}

	metrics(): Promise<QueueMetrics> {
		return this.target.metrics();
	}

	send(body: unknown, options?: QueueSendOptions): Promise<QueueSendResponse> {
		return this.forward([body], () => this.target.send(body, options));
	}

	sendBatch(messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions): Promise<QueueSendBatchResponse> {
		const list = [...messages];
		return this.forward(
			list.map((message) => message.body),
			() => this.target.sendBatch(list, options),
		);
	}

	/** Every message body sent, failed calls included, in order. */
	get messages(): EventsMessage[] {
		return this.calls.flat();
	}

	/** The events call n (from 1) carried, whether it failed or not. */
	eventsOfCall(n: number): QueuedEvent[] {
		return this.calls[n - 1]!.flatMap((body) => body.events);
	}

	private async forward<T>(bodies: unknown[], send: () => Promise<T>): Promise<T> {
		// The producer sends each message as its JSON text; a test reads the message it holds.
		this.calls.push(bodies.map((body) => (typeof body === "string" ? JSON.parse(body) : structuredClone(body)) as EventsMessage));
		const fail = this.fails(this.calls.length);
		if (fail && !this.failAfterSend) {
			this.failed++;
			throw new InjectedFault("queue unavailable");
		}
		await this.gate;
		let result: T;
		try {
			result = await send();
		} catch (err) {
			this.failed++;
			throw err;
		}
		this.delivered++;
		if (fail) {
			this.failed++;
			throw new InjectedFault("queue acknowledgement lost");
		}
		return result;
	}
}

// ---- A D1 outage the test switches on and off: the real local database behind a wrapper that
// refuses every query and batch while the outage lasts, and passes them through once it is over ----

export interface D1Outage {
	/** env.DB, refusing while `down`; hand it to the code under test as its DB binding. */
	readonly db: D1Database;
	down: boolean;
	/** Queries and batches refused so far. */
	refused: number;
}

/** Starts an outage of the real local D1 (set `down = false` to end it). */
export function d1Outage(): D1Outage {
	const outage = { down: true, refused: 0 } as { db: D1Database; down: boolean; refused: number };
	const refuse = <T>(run: () => Promise<T>): Promise<T> => {
		if (!outage.down) return run();
		outage.refused++;
		return Promise.reject(new InjectedFault("D1 unavailable"));
	};
	// batch() is handed the wrapped statements; it runs the real ones behind them.
	const reals = new WeakMap<object, D1PreparedStatement>();
	const wrap = (real: D1PreparedStatement): D1PreparedStatement => {
		const statement = {
			bind: (...values: unknown[]) => wrap(real.bind(...values)),
			first: (column?: string) => refuse(() => (column === undefined ? real.first() : real.first(column))),
			all: () => refuse(() => real.all()),
			run: () => refuse(() => real.run()),
			raw: () => refuse(() => real.raw()),
		};
		reals.set(statement, real);
		return statement as unknown as D1PreparedStatement;
	};
	outage.db = {
		prepare: (query: string) => wrap(env.DB.prepare(query)),
		batch: (statements: D1PreparedStatement[]) => refuse(() => env.DB.batch(statements.map((statement) => reals.get(statement)!))),
		exec: (query: string) => refuse(() => env.DB.exec(query)),
	} as unknown as D1Database;
	return outage;
}

// ---- POST /v1/events through the Worker with a recording queue ----

export const EVENTS_URL = `${BASE}/v1/events`;

/** A request to POST /v1/events. A string body is sent as application/json unless told otherwise. */
export function eventsRequest(body: BodyInit, key?: string, contentType: string | null = "application/json"): Request {
	const headers = new Headers();
	if (key !== undefined) headers.set("authorization", `Bearer ${key}`);
	if (contentType !== null) headers.set("content-type", contentType);
	return new Request(EVENTS_URL, { method: "POST", body, headers });
}

/** Calls the Worker's own fetch handler with EVENTS replaced by `queue`; does not wait for waitUntil. */
export function fetchWith(request: Request, queue: RecordingQueue, ctx: ExecutionContext, overrides: Partial<Env> = {}): Promise<Response> {
	return worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, { ...env, ...overrides, EVENTS: queue }, ctx);
}

/** Calls the Worker with a recording queue and waits for everything it scheduled with waitUntil. */
export async function ingest(request: Request, queue = new RecordingQueue()): Promise<{ response: Response; queue: RecordingQueue }> {
	const ctx = createExecutionContext();
	const response = await fetchWith(request, queue, ctx);
	await waitOnExecutionContext(ctx);
	return { response, queue };
}

export interface ErrorBody {
	error: { code: string; message: string; details?: { index?: number; path: string; message: string }[] };
}

/** Reads an error answer, checking it has the one error shape. */
export async function errorOf(response: Response): Promise<ErrorBody["error"]> {
	const body = await response.json<ErrorBody>();
	expect(Object.keys(body)).toEqual(["error"]);
	expect(body.error).toEqual({
		code: expect.any(String),
		message: expect.any(String),
		...(body.error.details && { details: expect.any(Array) }),
	});
	return body.error;
}

/** The UTF-8 byte length of a value's JSON. */
export function jsonBytes(value: unknown): number {
	return new TextEncoder().encode(JSON.stringify(value)).byteLength;
}

export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// ---- Determinism ----

/** mulberry32: a small seeded PRNG, so a failing run can be replayed from its seed. */
export function mulberry32(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
