// The curl snippets the empty states show, with this origin and placeholder keys ($WRITE_KEY,
// $READ_KEY: the page never prints a key), and their Copy buttons.
import { $, h } from "./dom.js";

export function curlBlock(id, text) {
	const code = h("code", { id, "data-testid": id }, text);
	return h(
		"div",
		{ class: "code-block" },
		h("pre", {}, code),
		h("button", { type: "button", class: "button small copy", "data-copy": id }, "Copy"),
	);
}

export function eventsCurl() {
	return [
		`curl -X POST ${location.origin}/v1/events \\`,
		`  -H "Authorization: Bearer $WRITE_KEY" -H 'Content-Type: application/json' \\`,
		`  -d '{"event": "api_call", "userId": "u1", "route": "/v1/items/:id", "performance": {"duration": 42.5, "statusCode": 200}}'`,
	].join("\n");
}

export function usageCurl() {
	return [
		`curl -X POST ${location.origin}/v1/events \\`,
		`  -H "Authorization: Bearer $WRITE_KEY" -H 'Content-Type: application/json' \\`,
		`  -d '{"event": "api_call", "customerId": "acme", "usage": {"sku": "tokens", "quantity": 1250, "unit": "token"}}'`,
	].join("\n");
}

export function meterCurl() {
	return [
		`curl -X POST ${location.origin}/v1/meters \\`,
		`  -H "Authorization: Bearer $READ_KEY" -H 'Content-Type: application/json' \\`,
		`  -d '{"slug": "api_calls", "eventType": "api_call", "aggregation": "COUNT"}'`,
	].join("\n");
}

export function invoiceCurl() {
	return [
		`curl -X POST ${location.origin}/v1/plans \\`,
		`  -H "Authorization: Bearer $READ_KEY" -H 'Content-Type: application/json' \\`,
		`  -d '{"key": "starter", "currency": "USD", "interval": "month", "flatFee": "10", "rateCards": [{"sku": "tokens", "price": {"model": "unit", "amount": "0.002"}}]}'`,
		`curl -X PUT ${location.origin}/v1/customers/acme/subscription \\`,
		`  -H "Authorization: Bearer $READ_KEY" -H 'Content-Type: application/json' -d '{"plan": "starter"}'`,
	].join("\n");
}

/** Every [data-copy] button copies the text of the element it names. */
export function wireCopyButtons() {
	document.addEventListener("click", async (e) => {
		const button = e.target instanceof Element ? e.target.closest("[data-copy]") : null;
		if (!button) return;
		try {
			await navigator.clipboard.writeText($(button.dataset.copy).textContent);
			button.textContent = "Copied";
		} catch {
			button.textContent = "Select and copy";
		}
		setTimeout(() => (button.textContent = "Copy"), 1500);
	});
	$("events-curl").textContent = eventsCurl();
}
