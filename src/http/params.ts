// Path parameters: itty-router hands them over still percent-encoded.
import type { IRequest } from "itty-router";
import { invalidField } from "./errors";

/** The decoded path parameter, or a 400 naming it when its encoding is broken. */
export function pathParam(request: IRequest, name: string): string {
	try {
		return decodeURIComponent(request.params[name] ?? "");
	} catch {
		throw invalidField(name, "is not valid percent-encoding");
	}
}
