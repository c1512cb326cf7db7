// The tenant's meters, kept in the aggregator's SQLite (the meters table): created and deleted
// through its RPCs, and evaluated per event at ingest from an in-memory list of the active ones.
// A deleted meter keeps its row (deleted_at set), so its history stays readable and its id is never
// reused; its slug is free again, for a new meter with a new id.
import { compileMeter, validateMeter, type CompiledMeter, type MeterDefinition, type StoredMeter } from "../meters/model.js";
import type { Store } from "./state.js";

type MeterRow = { id: number; slug: string; definition: string; created_at: number; deleted_at: number | null };

/** An active meter as ingest evaluates it. */
export interface ActiveMeter {
	id: number;
	/** Epoch ms: the meter counts the events ingested from then on. */
	createdAt: number;
	meter: CompiledMeter;
}

export class MeterRegistry {
	/** The active meters; null until read from storage, and after any change. */
	private cached: ActiveMeter[] | null = null;

	constructor(
		private readonly store: Store,
		private readonly cap: number,
	) {}

	/**
	 * Creates a meter, unless an active one has its slug ("exists") or the tenant has `cap` active
	 * meters ("capped"). Call inside a transaction. The definition is validated again (the Worker
	 * did, but a definition that cannot be evaluated must never be stored), and stored normalized.
	 */
	create(input: MeterDefinition, now: number): StoredMeter | "exists" | "capped" {
		const { meter: definition, issues } = validateMeter(input);
		if (!definition) throw new Error(`invalid meter definition: ${JSON.stringify(issues)}`);
		const { active, taken } = this.store
			.rows<{ active: number; taken: number }>(
				"SELECT count(*) AS active, coalesce(sum(slug = ?), 0) AS taken FROM meters WHERE deleted_at IS NULL",
				definition.slug,
			)
			.at(0)!;
		if (taken > 0) return "exists";
		if (active >= this.cap) return "capped";
		this.store.exec(
			"INSERT INTO meters (slug, definition, created_at) VALUES (?, ?, ?)",
			definition.slug,
			JSON.stringify(definition),
			now,
		);
		this.cached = null;
		return toStored(this.store.rows<MeterRow>("SELECT * FROM meters WHERE id = last_insert_rowid()").at(0)!);
	}

	/** Marks the active meter with this slug deleted and returns it, or null if there is none. Call inside a transaction. */
	delete(slug: string, now: number): StoredMeter | null {
		const row = this.store.rows<MeterRow>("SELECT * FROM meters WHERE slug = ? AND deleted_at IS NULL", slug).at(0);
		if (!row) return null;
		this.store.exec("UPDATE meters SET deleted_at = ? WHERE id = ?", now, row.id);
		this.cached = null;
		return toStored({ ...row, deleted_at: now });
	}

	/** The active meters, by slug. */
	list(): StoredMeter[] {
		return this.store.rows<MeterRow>("SELECT * FROM meters WHERE deleted_at IS NULL ORDER BY slug").map(toStored);
	}

	/** The active meter with this slug, else the one deleted last, else null: what a query of the slug reads. */
	get(slug: string): StoredMeter | null {
		const row = this.store
			.rows<MeterRow>("SELECT * FROM meters WHERE slug = ? ORDER BY deleted_at IS NOT NULL, deleted_at DESC, id DESC LIMIT 1", slug)
			.at(0);
		return row ? toStored(row) : null;
	}

	/**
	 * The active meters, compiled, from memory. create and delete drop memory rather than update
	 * it, so it is reloaded on the next call: a change that rolls back leaves nothing behind.
	 */
	active(): ActiveMeter[] {
		this.cached ??= this.store
			.rows<MeterRow>("SELECT * FROM meters WHERE deleted_at IS NULL ORDER BY id")
			.map((row) => ({ id: row.id, createdAt: row.created_at, meter: compileMeter(JSON.parse(row.definition) as MeterDefinition) }));
		return this.cached;
	}

	/** Forgets what memory holds, for a transaction that read active() after changing meters and then rolled back. */
	reset(): void {
		this.cached = null;
	}
}

function toStored(row: MeterRow): StoredMeter {
	return {
		...(JSON.parse(row.definition) as MeterDefinition),
		id: row.id,
		createdAt: new Date(row.created_at).toISOString(),
		deletedAt: row.deleted_at === null ? null : new Date(row.deleted_at).toISOString(),
	};
}
