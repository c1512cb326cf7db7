// The Analytics Engine outbox: points of committed flushes, packed a few hundred to a row, written
// at most 250 per invocation. A failing write backs off instead of spinning, and the outbox is
// bounded: past MAX_OUTBOX_POINTS the oldest points are dropped and counted (dashboards only;
// D1 stays exact).
import { MAX_POINTS_PER_INVOCATION, type DataPoint } from "../sinks/analytics.js";
import { backOff, recovered, type Store } from "./state.js";

export const MAX_OUTBOX_POINTS = 25_000;

/** Appends points, packed by MAX_POINTS_PER_INVOCATION, dropping the oldest beyond the bound. Call inside a transaction. */
export function appendPoints(store: Store, points: DataPoint[]): void {
	for (let start = 0; start < points.length; start += MAX_POINTS_PER_INVOCATION) {
		const part = points.slice(start, start + MAX_POINTS_PER_INVOCATION);
		store.exec("INSERT INTO outbox (points, count) VALUES (?, ?)", JSON.stringify(part), part.length);
	}
	let total = outboxPoints(store);
	while (total > MAX_OUTBOX_POINTS) {
		const oldest = store.rows<{ id: number; count: number }>("SELECT id, count FROM outbox ORDER BY id LIMIT 1")[0]!;
		store.exec("DELETE FROM outbox WHERE id = ?", oldest.id);
		store.state.counters.analytics_dropped += oldest.count;
		total -= oldest.count;
	}
}

export function outboxPoints(store: Store): number {
	return store.rows<{ n: number }>("SELECT coalesce(sum(count), 0) AS n FROM outbox")[0]!.n;
}

/** Writes the oldest points, at most one invocation's worth, unless a failure's backoff is still running. */
export function drainOutbox(store: Store, write: (points: DataPoint[]) => number, now: number): void {
	if (now < store.state.retries.outbox.retryAt) return;
	const rows: { id: number; points: string; count: number }[] = [];
	let count = 0;
	for (const row of store.rows<{ id: number; points: string; count: number }>(
		"SELECT id, points, count FROM outbox ORDER BY id LIMIT 10",
	)) {
		if (rows.length > 0 && count + row.count > MAX_POINTS_PER_INVOCATION) break;
		rows.push(row);
		count += row.count;
	}
	if (rows.length === 0) return;
	try {
		write(rows.flatMap((row) => JSON.parse(row.points) as DataPoint[]));
	} catch (err) {
		console.error("Analytics Engine write failed; points kept for a later alarm", err);
		store.transact((state) => backOff(state, "outbox", now));
		return;
	}
	store.transact(
		(state) => {
			store.exec("DELETE FROM outbox WHERE id <= ?", rows[rows.length - 1]!.id);
			recovered(state, "outbox");
		},
		{ analytics_points: count },
	);
}
