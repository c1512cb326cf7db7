// The D1 statements for rejected Segment and PostHog events: prepared, numbered binds, typed results.

/** D1 binds at most 100 parameters per statement. */
const MAX_BINDS = 100;
const DAY_MS = 86_400_000;

/** What is kept: per request, per stored body, for how long, and per tenant. */
export const REJECTION_LIMITS = {
	perRequest: 100,
	bodyBytes: 8 * 1024,
	keepMs: 30 * DAY_MS,
	// Bounds D1 even for an SDK that sends nothing but invalid batches at the rate limit.
	perTenant: 10_000,
} as const;

export type RejectionSource = "segment" | "posthog";

/** One rejected event as stored; issues and body are JSON text. */
export interface NewRejection {
	event_id: string | null;
	place: string;
	issues: string;
	body: string;
}

export interface RejectionRow extends NewRejection {
	seq: number;
	received_at: string;
	source: RejectionSource;
}

/** Rows per INSERT: tenant, received_at and source are shared, each row binds four values. */
const ROWS_PER_INSERT = Math.floor((MAX_BINDS - 3) / 4);

/**
 * Stores one request's rejections and, in the same transaction, prunes the tenant's rows older
 * than keepMs and beyond the newest perTenant. Few statements, since each counts against a
 * Worker's D1 query limit.
 */
export async function insertRejections(
	db: D1Database,
	tenant: string,
	source: RejectionSource,
	receivedAt: number,
	rows: NewRejection[],
): Promise<void> {
	const statements: D1PreparedStatement[] = [];
	for (let start = 0; start < rows.length; start += ROWS_PER_INSERT) {
		const binds: (string | null)[] = [tenant, new Date(receivedAt).toISOString(), source];
		const tuples = rows.slice(start, start + ROWS_PER_INSERT).map((row) => {
			binds.push(row.event_id, row.place, row.issues, row.body);
			const n = binds.length;
			return `(?1, ?2, ?3, ?${n - 3}, ?${n - 2}, ?${n - 1}, ?${n})`;
		});
		statements.push(
			db
				.prepare(`INSERT INTO rejections (tenant, received_at, source, event_id, place, issues, body) VALUES ${tuples.join(", ")}`)
				.bind(...binds),
		);
	}
	statements.push(
		db
			.prepare("DELETE FROM rejections WHERE tenant = ?1 AND received_at < ?2")
			.bind(tenant, new Date(receivedAt - REJECTION_LIMITS.keepMs).toISOString()),
		db
			.prepare(
				"DELETE FROM rejections WHERE tenant = ?1 AND seq <= (SELECT seq FROM rejections WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
			)
			.bind(tenant, REJECTION_LIMITS.perTenant),
	);
	await db.batch(statements);
}

/** One page of the tenant's rejections with seq below `beforeSeq`, newest first, within keepMs of `now`. */
export async function listRejections(
	db: D1Database,
	tenant: string,
	beforeSeq: number,
	limit: number,
	now: number,
): Promise<RejectionRow[]> {
	const { results } = await db
		.prepare(
			`SELECT seq, received_at, source, event_id, place, issues, body FROM rejections
			 WHERE tenant = ?1 AND seq < ?2 AND received_at >= ?3 ORDER BY seq DESC LIMIT ?4`,
		)
		.bind(tenant, beforeSeq, new Date(now - REJECTION_LIMITS.keepMs).toISOString(), limit)
		.all<RejectionRow>();
	return results;
}
