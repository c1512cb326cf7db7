// Ingest over a service binding: other Workers in the account call `ingest(events, writeKey)`
// by RPC, with the same key check, validation, rate limit and delivery as POST /v1/events.
import { WorkerEntrypoint } from "cloudflare:workers";
import { verifyKey } from "../http/auth.js";
import { ApiError } from "../shared/errors.js";
import { utf8Length } from "../shared/bytes.js";
import { EVENT_LIMITS } from "../event/model.js";
import { parseEventsBody } from "../event/validate.js";
import { acceptedOrRefused, acceptEvents, enforceRateLimit, redactionFor, refuseCapped } from "./events.js";

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
			// The same byte limit as an HTTP body, so no call can spill more than a Durable Object row holds.
			const bytes = utf8Length(JSON.stringify(events) ?? "");
			if (bytes > EVENT_LIMITS.maxBodyBytes) {
				throw new ApiError(413, `The events are ${bytes} bytes as JSON, over ${EVENT_LIMITS.maxBodyBytes}; send fewer per call`, {
					details: [{ path: "events", message: `larger than ${EVENT_LIMITS.maxBodyBytes} bytes` }],
				});
			}
			const accepted = acceptedOrRefused(parseEventsBody({ events }, Date.now(), redactionFor(this.env)));
			await refuseCapped(this.env, this.ctx, tenant, accepted);
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
