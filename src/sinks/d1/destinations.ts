// Forwarding destinations, their delivery health and their dead letters in D1.

export interface DestinationRow {
	tenant: string;
	id: string;
	kind: string;
	config: string;
	secret: string;
	test: number;
	created_at: string;
	delivered: number;
	dead_lettered: number;
	consecutive_failures: number;
	failing_since: string | null;
	last_success_at: string | null;
	last_failure_at: string | null;
	last_error: string | null;
	last_dead_letter_at: string | null;
}

export type NewDestination = Pick<DestinationRow, "tenant" | "id" | "kind" | "config" | "secret" | "test" | "created_at">;

export interface ForwardDeadLetterRow {
	seq: number;
	tenant: string;
	destination: string;
	events: string;
	error: string;
	attempts: number;
	first_failed_at: string;
	last_failed_at: string;
}

export type NewForwardDeadLetter = Omit<ForwardDeadLetterRow, "seq">;

/** Inserts a destination unless the tenant already has `max`; false when it has. */
export async function insertDestination(db: D1Database, row: NewDestination, max: number): Promise<boolean> {
	const result = await db
		.prepare(
			`INSERT INTO destinations (tenant, id, kind, config, secret, test, created_at)
			 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE (SELECT count(*) FROM destinations WHERE tenant = ?1) < ?8`,
		)
		.bind(row.tenant, row.id, row.kind, row.config, row.secret, row.test, row.created_at, max)
		.run();
	return result.meta.changes === 1;
}

/** Whether the tenant has any destination (the aggregator forwards only then). */
export async function hasDestinations(db: D1Database, tenant: string): Promise<boolean> {
	return (await db.prepare("SELECT 1 AS found FROM destinations WHERE tenant = ?1 LIMIT 1").bind(tenant).first()) !== null;
}

export async function listDestinations(db: D1Database, tenant: string): Promise<DestinationRow[]> {
	const { results } = await db
		.prepare("SELECT * FROM destinations WHERE tenant = ?1 ORDER BY created_at, id")
		.bind(tenant)
		.all<DestinationRow>();
	return results;
}

export function getDestination(db: D1Database, tenant: string, id: string): Promise<DestinationRow | null> {
	return db.prepare("SELECT * FROM destinations WHERE tenant = ?1 AND id = ?2").bind(tenant, id).first<DestinationRow>();
}

/** Deletes a destination and its dead letters; false when there was none. */
export async function deleteDestination(db: D1Database, tenant: string, id: string): Promise<boolean> {
	const [deleted] = await db.batch([
		db.prepare("DELETE FROM destinations WHERE tenant = ?1 AND id = ?2").bind(tenant, id),
		db.prepare("DELETE FROM forward_dead_letters WHERE tenant = ?1 AND destination = ?2").bind(tenant, id),
	]);
	return deleted!.meta.changes === 1;
}

/** A delivery of `events` events succeeded: the failure streak ends. */
export async function recordDelivered(db: D1Database, tenant: string, id: string, events: number, now: string): Promise<void> {
	await db
		.prepare(
			`UPDATE destinations SET delivered = delivered + ?3, consecutive_failures = 0, failing_since = NULL, last_success_at = ?4
			 WHERE tenant = ?1 AND id = ?2`,
		)
		.bind(tenant, id, events, now)
		.run();
}

/** A delivery attempt failed: the streak grows, and starts now if there was none. */
export async function recordFailure(db: D1Database, tenant: string, id: string, error: string, now: string): Promise<void> {
	await db
		.prepare(
			`UPDATE destinations SET consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, ?4),
			   last_failure_at = ?4, last_error = ?3
			 WHERE tenant = ?1 AND id = ?2`,
		)
		.bind(tenant, id, error, now)
		.run();
}

/** Keeps a batch a destination never took, and counts it on the destination, in one transaction. */
export async function insertForwardDeadLetter(db: D1Database, row: NewForwardDeadLetter, events: number): Promise<void> {
	await db.batch([
		db
			.prepare(
				`INSERT INTO forward_dead_letters (tenant, destination, events, error, attempts, first_failed_at, last_failed_at)
				 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`,
			)
			.bind(row.tenant, row.destination, row.events, row.error, row.attempts, row.first_failed_at, row.last_failed_at),
		db
			.prepare("UPDATE destinations SET dead_lettered = dead_lettered + ?3, last_dead_letter_at = ?4 WHERE tenant = ?1 AND id = ?2")
			.bind(row.tenant, row.destination, events, row.last_failed_at),
	]);
}

/** One page of a destination's dead letters after `afterSeq`, oldest first. */
export async function listForwardDeadLetters(
	db: D1Database,
	tenant: string,
	destination: string,
	afterSeq: number,
	limit: number,
): Promise<ForwardDeadLetterRow[]> {
	const { results } = await db
		.prepare("SELECT * FROM forward_dead_letters WHERE tenant = ?1 AND destination = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4")
		.bind(tenant, destination, afterSeq, limit)
		.all<ForwardDeadLetterRow>();
	return results;
}

export async function countForwardDeadLetters(db: D1Database, tenant: string): Promise<Map<string, number>> {
	const { results } = await db
		.prepare("SELECT destination, count(*) AS n FROM forward_dead_letters WHERE tenant = ?1 GROUP BY destination")
		.bind(tenant)
		.all<{ destination: string; n: number }>();
	return new Map(results.map((r) => [r.destination, r.n]));
}

export async function deleteForwardDeadLetters(db: D1Database, seqs: number[]): Promise<void> {
	if (seqs.length === 0) return;
	const statement = db.prepare("DELETE FROM forward_dead_letters WHERE seq = ?1");
	await db.batch(seqs.map((seq) => statement.bind(seq)));
}

/** Every destination's health columns, pipeline-wide (no ids leave /v1/health, only counts). */
export async function allDestinationHealth(
	db: D1Database,
): Promise<Pick<DestinationRow, "consecutive_failures" | "failing_since" | "last_dead_letter_at">[]> {
	const { results } = await db
		.prepare("SELECT consecutive_failures, failing_since, last_dead_letter_at FROM destinations")
		.all<Pick<DestinationRow, "consecutive_failures" | "failing_since" | "last_dead_letter_at">>();
	return results;
}
