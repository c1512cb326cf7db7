// Billing test helpers: the month boundary the tests close, the calls that close a month, and the
// plan, subscription and invoice calls.
import { ADMIN_TOKEN, call, getJson, postJson, type TestTenant } from "../helpers";

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

/** POST /v1/plans with the read key; fails loudly unless 201. */
export async function createPlan(tenant: TestTenant, plan: unknown): Promise<{ key: string; version: number }> {
	const response = await postJson("/v1/plans", plan, tenant.readKey);
	if (response.status !== 201) throw new Error(`plan creation failed: ${response.status} ${await response.text()}`);
	return response.json();
}

/** PUT /v1/customers/:id/subscription. */
export function subscribe(tenant: TestTenant, customer: string, body: unknown): Promise<Response> {
	return call(`/v1/customers/${encodeURIComponent(customer)}/subscription`, {
		method: "PUT",
		body: JSON.stringify(body),
		key: tenant.readKey,
	});
}

export interface InvoiceAnswer {
	customerId: string;
	period: string;
	status: string;
	currency: string;
	lines: Record<string, unknown>[];
	subtotal: number;
	subtotalDecimal: string;
	total: number;
	totalDecimal: string;
	frozenAt?: string;
}

export function invoiceOf(tenant: TestTenant, customer: string, period: string): Promise<InvoiceAnswer> {
	return getJson<InvoiceAnswer>(`/v1/customers/${encodeURIComponent(customer)}/invoice?period=${period}`, tenant.readKey);
}
