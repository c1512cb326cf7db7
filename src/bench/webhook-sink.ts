// A local webhook destination for the forwarding runs: an HTTP server on 127.0.0.1 that answers
// every POST 200 and counts the events each destination delivered (src/forward/providers.ts webhook body).
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface WebhookSink {
	url: string;
	/** Events received for a destination id, duplicates included. */
	received(destination: string): number;
	/** POSTs whose body was not a webhook delivery. */
	malformed: number;
	close(): Promise<void>;
}

export async function startWebhookSink(): Promise<WebhookSink> {
	const counts = new Map<string, number>();
	let malformed = 0;
	const server = createServer((request, response) => {
		const chunks: Buffer[] = [];
		request.on("data", (chunk: Buffer) => chunks.push(chunk));
		request.on("end", () => {
			try {
				const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { destination?: unknown; events?: unknown };
				if (typeof body.destination !== "string" || !Array.isArray(body.events)) throw new Error("not a webhook delivery");
				counts.set(body.destination, (counts.get(body.destination) ?? 0) + body.events.length);
			} catch {
				malformed++;
			}
			response.writeHead(200, { "content-type": "text/plain" }).end("ok");
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}/hook`,
		received: (destination) => counts.get(destination) ?? 0,
		get malformed() {
			return malformed;
		},
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
