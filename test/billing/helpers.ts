// Billing test helpers: the month boundary the tests close, and the calls that close a month.
import { ADMIN_TOKEN, call } from "../helpers";

/** December 2100: the aggregator's alarms are armed against the real clock, so in 2100 none fires by itself. */
export const DECEMBER = Date.UTC(2100, 11, 1);

/** POST /v1/periods/:period/close with a tenant's key. */
export function closeVia(period: string, key?: string): Promise<Response> {
	return call(`/v1/periods/${period}/close`, { method: "POST", key });
}

/** The admin's close of a tenant's month. */
export function adminClose(tenant: string, period: string, key = ADMIN_TOKEN): Promise<Response> {
	return call(`/v1/admin/tenants/${tenant}/periods/${period}/close`, { method: "POST", key });
}

/** An answer's status and JSON body. */
export async function bodyOf(response: Response): Promise<{ status: number; body: unknown }> {
	return { status: response.status, body: await response.json() };
}
