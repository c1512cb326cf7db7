// The producers' operational counters in D1 (not billing data).

export type ProducerCounter = "received" | "enqueued" | "enqueue_failures" | "lost" | "rejected" | "capped" | OperationCounter;

/** Pipeline-wide operation counts, kept under the tenant PIPELINE_WIDE for the benchmark. */
export type OperationCounter = "http_requests" | "queue_messages" | "queue_send_calls" | "consumer_batches";

export const PIPELINE_WIDE = "*";

/** Adds one isolate's counter deltas; one statement per (tenant, counter). */
export async function addProducerMetrics(
	db: D1Database,
	deltas: { tenant: string; name: ProducerCounter; value: number }[],
): Promise<void> {
	if (deltas.length === 0) return;
	const statement = db.prepare(
		"INSERT INTO producer_metrics (tenant, name, value) VALUES (?1, ?2, ?3) ON CONFLICT (tenant, name) DO UPDATE SET value = value + excluded.value",
	);
	await db.batch(deltas.map((delta) => statement.bind(delta.tenant, delta.name, delta.value)));
}

export async function producerMetrics(db: D1Database, tenant: string): Promise<Partial<Record<ProducerCounter, number>>> {
	const { results } = await db
		.prepare("SELECT name, value FROM producer_metrics WHERE tenant = ?1")
		.bind(tenant)
		.all<{ name: ProducerCounter; value: number }>();
	return Object.fromEntries(results.map((row) => [row.name, row.value]));
}

export async function pipelineOperations(db: D1Database): Promise<Partial<Record<OperationCounter, number>>> {
	const { results } = await db
		.prepare("SELECT name, value FROM producer_metrics WHERE tenant = ?1")
		.bind(PIPELINE_WIDE)
		.all<{ name: OperationCounter; value: number }>();
	return Object.fromEntries(results.map((row) => [row.name, row.value]));
}
