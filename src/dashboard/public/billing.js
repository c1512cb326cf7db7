// Usage and billing for this UTC month: exact usage per customer and SKU, each meter per customer,
// and the live invoice previews of the current period.
import { ApiFailure, getJson } from "./api.js";
import { $, h, section } from "./dom.js";
import { DASH, formatCount, formatDecimal, formatMoney, formatMonth } from "./format.js";
import { curlBlock, invoiceCurl, meterCurl, usageCurl } from "./snippets.js";
import { state } from "./state.js";

function customerLabel(id) {
	return id === null ? "(no customer)" : id;
}

export async function loadBilling(generation) {
	const now = new Date();
	$("billing-month").textContent = `· ${formatMonth(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))} (UTC)`;
	await Promise.all([
		section($("usage-body"), async () => {
			const usage = await getJson("/v1/usage?groupBy=customer&granularity=month&limit=1000");
			if (generation === state.generation) renderUsage(usage);
		}),
		section($("meters-body"), async () => {
			const { meters } = await getJson("/v1/meters");
			const answers = await Promise.all(
				meters.map((meter) =>
					getJson(`/v1/meters/${encodeURIComponent(meter.slug)}/query?groupBy=customerId`).then(
						(answer) => ({ meter, answer }),
						(err) => {
							if (err instanceof ApiFailure && err.kind === "http") return { meter, error: err.message };
							throw err;
						},
					),
				),
			);
			if (generation === state.generation) renderMeters(answers);
		}),
		section($("invoices-body"), async () => {
			const invoices = await getJson("/v1/invoices?period=current&limit=1000");
			if (generation === state.generation) renderInvoices(invoices);
		}),
	]);
}

function renderUsage(usage) {
	const body = $("usage-body");
	if (usage.items.length === 0 && usage.adjustments.length === 0) {
		body.replaceChildren(
			h("div", { class: "empty-inline", "data-testid": "usage-empty" }, [
				h("p", { class: "muted" }, "No usage this month. Events with a usage field are metered per customer:"),
				curlBlock("usage-curl", usageCurl()),
			]),
		);
		return;
	}
	const skus = [];
	const seen = new Set();
	const customers = new Map();
	for (const item of usage.items) {
		const sku = JSON.stringify([item.sku, item.unit]);
		if (!seen.has(sku)) {
			seen.add(sku);
			skus.push(item);
		}
		const id = item.customerId;
		if (!customers.has(id)) customers.set(id, new Map());
		customers.get(id).set(sku, item);
	}
	skus.sort((a, b) => a.sku.localeCompare(b.sku) || a.unit.localeCompare(b.unit));
	const table = h(
		"table",
		{ class: "data-table", "data-testid": "usage-table" },
		h(
			"thead",
			{},
			h(
				"tr",
				{},
				h("th", { scope: "col" }, "Customer"),
				skus.map((s) => h("th", { scope: "col", class: "num" }, s.sku, h("span", { class: "unit" }, ` ${s.unit}`))),
			),
		),
		h(
			"tbody",
			{},
			[...customers].map(([id, cells]) =>
				h(
					"tr",
					{},
					h("th", { scope: "row" }, customerLabel(id)),
					skus.map((s) => {
						const item = cells.get(JSON.stringify([s.sku, s.unit]));
						return h(
							"td",
							{
								class: "num",
								"data-testid": "usage-cell",
								"data-customer": id ?? "",
								"data-sku": s.sku,
								"data-unit": s.unit,
								title: item ? `${formatCount(item.events)} events` : null,
							},
							item ? formatDecimal(item.quantityDecimal) : DASH,
						);
					}),
				),
			),
		),
	);
	const notes = [];
	if (usage.adjustments.length > 0)
		notes.push(
			h(
				"p",
				{ class: "muted small" },
				`${formatCount(usage.adjustments.length)} late usage line(s) for closed months are booked this month as adjustments.`,
			),
		);
	if (usage.nextCursor) notes.push(h("p", { class: "muted small" }, "Showing the first 1,000 customers."));
	body.replaceChildren(h("div", { class: "table-wrap" }, table), ...notes);
}

function renderMeters(answers) {
	const body = $("meters-body");
	if (answers.length === 0) {
		body.replaceChildren(
			h("div", { class: "empty-inline", "data-testid": "meters-empty" }, [
				h("p", { class: "muted" }, "No meters yet. A meter turns events into a number per customer; create one with the read key:"),
				curlBlock("meter-curl", meterCurl()),
			]),
		);
		return;
	}
	const rows = [];
	for (const { meter, answer, error } of answers) {
		const title = h(
			"th",
			{ scope: "row", class: "meter-name" },
			meter.slug,
			h("span", { class: "muted small" }, ` ${meter.aggregation} of ${meter.eventType}`),
		);
		if (error) {
			rows.push(h("tr", {}, title, h("td", { colspan: 2, class: "section-error" }, error)));
			continue;
		}
		if (answer.data.length === 0) {
			rows.push(h("tr", {}, title, h("td", { colspan: 2, class: "muted" }, "No data this month")));
			continue;
		}
		answer.data.forEach((cell, i) => {
			rows.push(
				h(
					"tr",
					{},
					i === 0 ? title : h("td", { "aria-hidden": "true" }),
					h("td", {}, customerLabel(cell.customerId)),
					h(
						"td",
						{ class: "num", "data-testid": "meter-cell", "data-meter": meter.slug, "data-customer": cell.customerId ?? "" },
						formatDecimal(cell.valueDecimal ?? cell.value),
						cell.estimated ? h("span", { class: "muted small", title: "estimated" }, " ≈") : null,
					),
				),
			);
		});
	}
	body.replaceChildren(
		h(
			"div",
			{ class: "table-wrap" },
			h(
				"table",
				{ class: "data-table", "data-testid": "meters-table" },
				h(
					"thead",
					{},
					h(
						"tr",
						{},
						h("th", { scope: "col" }, "Meter"),
						h("th", { scope: "col" }, "Customer"),
						h("th", { scope: "col", class: "num" }, "Value"),
					),
				),
				h("tbody", {}, rows),
			),
		),
	);
}

function renderInvoices(answer) {
	const body = $("invoices-body");
	if (answer.invoices.length === 0) {
		body.replaceChildren(
			h("div", { class: "empty-inline", "data-testid": "invoices-empty" }, [
				h(
					"p",
					{ class: "muted" },
					"No customer is subscribed this month. Create a plan and subscribe a customer with the read key:",
				),
				curlBlock("invoice-curl", invoiceCurl()),
			]),
		);
		return;
	}
	const rows = answer.invoices.map((invoice) =>
		h(
			"tr",
			{ "data-testid": "invoice-row", "data-customer": invoice.customerId },
			h("th", { scope: "row" }, invoice.customerId),
			h("td", {}, [...new Set((invoice.subscriptions ?? []).map((s) => `${s.plan} v${s.version}`))].join(", ") || DASH),
			h("td", {}, h("span", { class: `pill pill-${invoice.status}` }, invoice.status)),
			h(
				"td",
				{ class: "num strong", "data-testid": "invoice-total", "data-customer": invoice.customerId },
				formatMoney(invoice.totalDecimal, invoice.currency),
			),
		),
	);
	body.replaceChildren(
		h(
			"div",
			{ class: "table-wrap" },
			h(
				"table",
				{ class: "data-table", "data-testid": "invoices-table" },
				h(
					"thead",
					{},
					h(
						"tr",
						{},
						h("th", { scope: "col" }, "Customer"),
						h("th", { scope: "col" }, "Plan"),
						h("th", { scope: "col" }, "Status"),
						h("th", { scope: "col", class: "num" }, "Total"),
					),
				),
				h("tbody", {}, rows),
			),
		),
		...(answer.nextCursor ? [h("p", { class: "muted small" }, "Showing the first 1,000 customers.")] : []),
	);
}
