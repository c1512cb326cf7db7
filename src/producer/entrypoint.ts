// Ingest over a service binding: other Workers in the account call `ingest(events, writeKey)`
// by RPC, with the same key check, validation, rate limit and delivery as POST /v1/events.
import { WorkerEntrypoint } from "cloudflare:workers";
import { verifyKey } from "../auth/keys";
import { ApiError } from "../http/errors";
import { parseEventsBody } from "../events/schema";
import { acceptEvents, enforceRateLimit, redactionFor } from "./ingest";

export interface IngestResult {
	accepted: number;
	ids: string[];
}

/** Bind it with `services = [{ binding = "METERLINE", service = "meterline", entrypoint = "MeterlineIngest" }]`. */
export class MeterlineIngest extends WorkerEntrypoint<Env> {
	/**
	 * Accepts 1 to 1000 events for the key's tenant; resolves once they are validated (the enqueue
	 * continues in the background, as with HTTP). Rejects with "<status> <code>: <message>".
	 */
	async ingest(events: unknown[], writeKey: string): Promise<IngestResult> {
		try {
			const tenant = await verifyKey(this.env, String(writeKey), ["write"]);
			await enforceRateLimit(this.env, tenant);
			const accepted = parseEventsBody({ events }, Date.now(), redactionFor(this.env));
			await acceptEvents(this.env, this.ctx, tenant, accepted, false);
			return { accepted: accepted.length, ids: accepted.map((event) => event.id) };
		} catch (err) {
			// RPC carries only an error's message across: make it say what HTTP would have said.
			if (err instanceof ApiError) {
				const details = err.details?.length ? ` ${JSON.stringify(err.details)}` : "";
				throw new Error(`${err.status} ${err.code}: ${err.message}${details}`);
			}
			console.error("ingest RPC failed", err);
			throw new Error("500 internal: Internal error");
		}
	}
}
