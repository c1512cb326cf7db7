// GET /v1/health: healthy, degraded (flush retries, recent dead letters or spills) and critical
// (flushes failing over 5 minutes, spills within 5 minutes), with the exact checks behind each;
// recent dead letters are counted through an index, up to a cap.
// The health monitor is one pipeline-wide Durable Object shared by every test in this file, so the
// tests run in order on a frozen clock and each leaves the monitor and dead_letters as it found them.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { aggregator, failD1, freezeClock, FROZEN_AT, makeEvent, settle } from "../aggregator/helpers";
import { advanceClock, call, createTenant, uniqueTenantId, type TestTenant } from "../helpers";
import { expectError } from "../security/helpers";
import { RECENT_DEAD_LETTERS } from "../../src/sinks/d1/dead-letters";
import { DEAD_LETTER_COUNT_CAP } from "../../src/read/health";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

const monitor = () => env.HEALTH.getByName("pipeline");

const HEALTHY_CHECKS = {
	d1: { ok: true },
	monitor: { ok: true },
	flushes: { retryingTenants: 0, failingOverThreshold: [] as string[], oldestFailureSince: null as string | null },
	deadLetters: { lastHour: 0, capped: false },
	spills: { lastHour: 0, lastFiveMinutes: 0 },
	destinations: { healthy: 0, degraded: 0, critical: 0 },
};
type Checks = typeof HEALTHY_CHECKS;

async function health(): Promise<{ status: number; body: { status: string; checks: Checks } }> {
	const response = await call("/v1/health");
	return { status: response.status, body: await response.json() };
}

/** The answer GET /v1/health must give: HTTP status, health status, and the checks that differ from healthy. */
function expected(httpStatus: number, status: string, changes: Partial<Checks> = {}) {
	return { status: httpStatus, body: { status, checks: { ...HEALTHY_CHECKS, ...changes } } };
}

/** A tenant whose aggregator holds one pending event row and whose next D1 flush fails. */
async function tenantWithFailingFlush(): Promise<TestTenant> {
	const tenant = await createTenant();
	await aggregator(tenant.id).ingest(tenant.id, [makeEvent()]);
	await runInDurableObject(aggregator(tenant.id), (instance) => {
		failD1(instance, 1);
	});
	return tenant;
}

async function flush(tenant: TestTenant): Promise<Response> {
	return call("/v1/flush", { method: "POST", key: tenant.writeKey });
}

async function insertDeadLetter(lastFailedAt: number): Promise<string> {
	const id = `health-${uniqueTenantId()}`;
	await env.DB.prepare(
		"INSERT INTO dead_letters (id, tenant, body, error, attempts, first_failed_at, last_failed_at) VALUES (?1, NULL, ?2, 'test', 1, ?3, ?3)",
	)
		.bind(id, '{"json":"poison"}', new Date(lastFailedAt).toISOString())
		.run();
	return id;
}

/** Inserts `count` dead letters that last failed at `lastFailedAt`, in one statement. */
async function insertDeadLetters(count: number, lastFailedAt: number): Promise<void> {
	await env.DB.prepare(
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
		 INSERT INTO dead_letters (id, tenant, body, error, attempts, first_failed_at, last_failed_at)
		 SELECT ?2 || '-' || i, NULL, '{"json":"poison"}', 'test', 1, ?3, ?3 FROM n`,
	)
		.bind(count, `health-${uniqueTenantId()}`, new Date(lastFailedAt).toISOString())
		.run();
}

beforeEach(() => {
	freezeClock();
});

afterEach(async () => {
	vi.useRealTimers();
	// A safety net for a test that failed half-way: this file owns the monitor and dead_letters.
	await runInDurableObject(monitor(), (_, state) => {
		state.storage.sql.exec("DELETE FROM failing_flushes");
		state.storage.sql.exec("DELETE FROM spills");
	});
	await env.DB.prepare("DELETE FROM dead_letters").run();
});

describe("GET /v1/health", () => {
	it("is healthy (200) when nothing is wrong", async () => {
		expect(await health()).toEqual(expected(200, "healthy"));
	});

	it("is degraded (200) while a tenant's flush is being retried, and healthy once it succeeds", async () => {
		const tenant = await tenantWithFailingFlush();
		const failed = await flush(tenant);
		expect(failed.headers.get("retry-after")).toBe("5");
		await expectError(failed, 503, "unavailable");

		expect((await settle(monitor().snapshot())).failingFlushes).toEqual([{ tenant: tenant.id, since: FROZEN_AT, failures: 1 }]);
		expect(await health()).toEqual(
			expected(200, "degraded", {
				flushes: { retryingTenants: 1, failingOverThreshold: [], oldestFailureSince: new Date(FROZEN_AT).toISOString() },
			}),
		);

		const recovered = await flush(tenant);
		expect(recovered.status).toBe(200);
		// 1 event row + 12 series rows (4 dimensions × minute, hour, day).
		expect(await recovered.json()).toEqual({ flushed: 13 });
		expect((await settle(monitor().snapshot())).failingFlushes).toEqual([]);
		expect(await health()).toEqual(expected(200, "healthy"));
	});

	it("is critical (503) once a tenant's flushes have failed for over 5 minutes", async () => {
		const tenant = await tenantWithFailingFlush();
		expect((await flush(tenant)).status).toBe(503);
		const since = new Date(FROZEN_AT).toISOString();

		advanceClock(5 * MINUTE);
		expect(await health()).toEqual(
			expected(200, "degraded", { flushes: { retryingTenants: 1, failingOverThreshold: [], oldestFailureSince: since } }),
		);

		advanceClock(1);
		expect(await health()).toEqual(
			expected(503, "critical", { flushes: { retryingTenants: 1, failingOverThreshold: [tenant.id], oldestFailureSince: since } }),
		);

		// Another failed retry keeps the failure's start: the outage is still over 5 minutes old.
		await runInDurableObject(aggregator(tenant.id), (instance) => {
			failD1(instance, 1);
		});
		expect((await flush(tenant)).status).toBe(503);
		expect((await settle(monitor().snapshot())).failingFlushes).toEqual([{ tenant: tenant.id, since: FROZEN_AT, failures: 2 }]);
		expect(await health()).toEqual(
			expected(503, "critical", { flushes: { retryingTenants: 1, failingOverThreshold: [tenant.id], oldestFailureSince: since } }),
		);

		expect((await flush(tenant)).status).toBe(200);
		expect(await health()).toEqual(expected(200, "healthy"));
	});

	it("is degraded (200) while a dead letter arrived within the last hour", async () => {
		const id = await insertDeadLetter(Date.now());
		expect(await health()).toEqual(expected(200, "degraded", { deadLetters: { lastHour: 1, capped: false } }));

		advanceClock(HOUR);
		expect(await health()).toEqual(expected(200, "degraded", { deadLetters: { lastHour: 1, capped: false } }));
		advanceClock(1);
		expect(await health()).toEqual(expected(200, "healthy"));

		await env.DB.prepare("DELETE FROM dead_letters WHERE id = ?1").bind(id).run();
	});

	it("counts recent dead letters up to 10,000, and reports more as 10,000 with capped: true", async () => {
		expect(DEAD_LETTER_COUNT_CAP).toBe(10_000);
		await insertDeadLetters(10_000, Date.now() - 30 * MINUTE);
		// Older ones are not counted, however many there are.
		await insertDeadLetters(5, Date.now() - HOUR - 1);
		expect(await health()).toEqual(expected(200, "degraded", { deadLetters: { lastHour: 10_000, capped: false } }));

		await insertDeadLetters(1, Date.now());
		expect(await health()).toEqual(expected(200, "degraded", { deadLetters: { lastHour: 10_000, capped: true } }));
	});

	it("counts recent dead letters by searching the last_failed_at index, never scanning the table", async () => {
		const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${RECENT_DEAD_LETTERS}`)
			.bind(new Date(Date.now() - HOUR).toISOString(), DEAD_LETTER_COUNT_CAP + 1)
			.all<{ detail: string }>();
		// The outer scan reads the bounded subquery's rows, not dead_letters.
		expect(results.map((row) => row.detail)).toEqual([
			"CO-ROUTINE (subquery-1)",
			"SEARCH dead_letters USING COVERING INDEX dead_letters_last_failed (last_failed_at>?)",
			"SCAN (subquery-1)",
		]);
	});

	it("is critical (503) while a spill happened within 5 minutes, then degraded for the rest of the hour", async () => {
		const tenant = uniqueTenantId("spill");
		await settle(monitor().spilled(tenant, 3));
		expect(await health()).toEqual(expected(503, "critical", { spills: { lastHour: 3, lastFiveMinutes: 3 } }));

		advanceClock(5 * MINUTE);
		expect(await health()).toEqual(expected(503, "critical", { spills: { lastHour: 3, lastFiveMinutes: 3 } }));
		advanceClock(1);
		expect(await health()).toEqual(expected(200, "degraded", { spills: { lastHour: 3, lastFiveMinutes: 0 } }));
		advanceClock(HOUR - 5 * MINUTE);
		expect(await health()).toEqual(expected(200, "healthy"));

		await runInDurableObject(monitor(), (_, state) => {
			state.storage.sql.exec("DELETE FROM spills WHERE tenant = ?", tenant);
		});
	});

	it("is critical (503) when a recent spill and a dead letter come together", async () => {
		const tenant = uniqueTenantId("spill");
		await settle(monitor().spilled(tenant, 2));
		const id = await insertDeadLetter(Date.now() - 10 * MINUTE);
		expect(await health()).toEqual(
			expected(503, "critical", { deadLetters: { lastHour: 1, capped: false }, spills: { lastHour: 2, lastFiveMinutes: 2 } }),
		);

		await env.DB.prepare("DELETE FROM dead_letters WHERE id = ?1").bind(id).run();
		await runInDurableObject(monitor(), (_, state) => {
			state.storage.sql.exec("DELETE FROM spills WHERE tenant = ?", tenant);
		});
		expect(await health()).toEqual(expected(200, "healthy"));
	});
});
