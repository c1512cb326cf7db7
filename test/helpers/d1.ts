// A D1 outage the test switches on and off: the real local database behind a wrapper that refuses
// every query and batch while the outage lasts, and passes them through once it is over.
import { env } from "cloudflare:workers";
import { InjectedFault } from "../aggregator/fixtures";

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
