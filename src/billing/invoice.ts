// An invoice from what was measured: per subscription segment, the plan's flat fee (prorated by
// seconds) and one line per rate card with its tiers and minimum or maximum as child lines. All
// arithmetic is exact (BigInt); only each line's total is rounded, half to even, to the currency's
// minor unit, and the subtotal is the sum of the rounded lines. Pure: the caller measures.
import { csvText } from "../http/csv.js";
import { CURRENCIES, EXACT_SCALE, formatMinor, formatScaled, PRICE_SCALE, QUANTITY_SCALE, toMinor } from "./money.js";
import { priceQuantity } from "./pricing.js";
import { measureKey, type Quantities } from "./quantities.js";
import type { StoredPlan } from "./plans.js";
import type { Segment } from "./subscriptions.js";

/** preview: the current month, still counting; draft: a past month not closed yet; final: a closed month. */
export type InvoiceStatus = "preview" | "draft" | "final";

export interface InvoicePart {
	/** Clipped to the period, so `to` is set. */
	segment: Segment & { to: string };
	plan: StoredPlan;
}

export interface InvoiceInput {
	customer: string;
	period: string;
	status: InvoiceStatus;
	from: string;
	to: string;
	parts: InvoicePart[];
	/** The customer's measured quantities per part (same order as parts). */
	quantities: Quantities[];
}

export type Invoice = Record<string, unknown> & { customerId: string; currency: string; total: number; totalDecimal: string };

const SCALE_UP = 10n ** BigInt(EXACT_SCALE - PRICE_SCALE);

const quantity = (micros: bigint) => formatScaled(micros, QUANTITY_SCALE);
const price = (picos: bigint) => formatScaled(picos, PRICE_SCALE);
const exact = (amount: bigint) => formatScaled(amount, EXACT_SCALE);

export function composeInvoice(input: InvoiceInput): Invoice {
	const currency = input.parts[0]!.plan.plan.currency;
	// Subscriptions keep one currency per month; an invoice that would mix two is a bug, never a sum.
	if (input.parts.some((part) => part.plan.plan.currency !== currency)) throw new Error(`invoice of ${input.customer} mixes currencies`);
	const digits = CURRENCIES[currency]!;
	const money = (minor: bigint) => ({ amount: Number(minor), amountDecimal: formatMinor(minor, digits) });
	const lines: Record<string, unknown>[] = [];
	let subtotal = 0n;
	input.parts.forEach(({ segment, plan }, i) => {
		const { plan: definition } = plan;
		const base = { plan: plan.key, version: plan.version, from: segment.from, to: segment.to };
		if (definition.flatFee > 0n) {
			const seconds = BigInt((Date.parse(segment.to) - Date.parse(segment.from)) / 1000);
			const periodSeconds = BigInt(intervalSeconds(definition.interval, input.from, input.to));
			const minor = toMinor(definition.flatFee * SCALE_UP * seconds, digits, periodSeconds);
			subtotal += minor;
			lines.push({
				type: "flat_fee",
				...base,
				description: `${definition.name} (${definition.interval === "year" ? "yearly" : "monthly"} fee)`,
				flatFee: price(definition.flatFee),
				...(seconds === periodSeconds ? {} : { proration: { seconds: Number(seconds), intervalSeconds: Number(periodSeconds) } }),
				...money(minor),
			});
		}
		for (const card of definition.rateCards) {
			const measured = input.quantities[i]!.get(input.customer)?.get(measureKey(card.target));
			const micros = measured && measured.micros > 0n ? measured.micros : 0n;
			const priced = priceQuantity(card, micros);
			const minor = toMinor(priced.amount, digits);
			subtotal += minor;
			const children: Record<string, unknown>[] = priced.tiers.map((tier) => ({
				type: "tier",
				tier: tier.tier,
				from: quantity(tier.from),
				upTo: tier.upTo === null ? null : quantity(tier.upTo),
				quantity: quantity(tier.quantity),
				unitAmount: price(tier.unitAmount),
				flatAmount: price(tier.flatAmount),
				amountExact: exact(tier.amount),
			}));
			if (priced.adjustment) children.push({ type: priced.adjustment.kind, amountExact: exact(priced.adjustment.amount) });
			const model = card.price;
			lines.push({
				type: "usage",
				...base,
				...card.target,
				description: card.description ?? ("meter" in card.target ? card.target.meter : card.target.sku),
				model: model.model,
				quantity: quantity(priced.quantity),
				...(measured?.estimated ? { estimated: true } : {}),
				freeQuantity: quantity(priced.freeQuantity),
				billableQuantity: quantity(priced.billable),
				...(model.model === "unit" ? { unitAmount: price(model.amount) } : {}),
				...(model.model === "package"
					? {
							packageAmount: price(model.amount),
							quantityPerPackage: quantity(model.quantityPerPackage),
							packages: Number(priced.packages),
						}
					: {}),
				amountExact: exact(priced.amount),
				...money(minor),
				children,
			});
		}
	});
	const totals = money(subtotal);
	return {
		customerId: input.customer,
		period: input.period,
		status: input.status,
		currency,
		from: input.from,
		to: input.to,
		subscriptions: input.parts.map(({ segment, plan }) => ({
			plan: plan.key,
			version: plan.version,
			from: segment.from,
			to: segment.to,
		})),
		lines,
		subtotal: totals.amount,
		subtotalDecimal: totals.amountDecimal,
		total: totals.amount,
		totalDecimal: totals.amountDecimal,
	};
}

/**
 * The seconds a flat fee is spread over: a monthly fee over its month; a yearly fee over the
 * calendar year of the month, so each month's invoice bills its own seconds of it.
 */
function intervalSeconds(interval: "month" | "year", from: string, to: string): number {
	if (interval === "month") return (Date.parse(to) - Date.parse(from)) / 1000;
	const year = Number(from.slice(0, 4));
	return (Date.UTC(year + 1, 0, 1) - Date.UTC(year, 0, 1)) / 1000;
}

/** The invoice as CSV: one row per line and child line, then the total (text cells quoted as the usage CSV's are). */
export function invoiceCsv(invoice: Invoice): string {
	const rows = ["customer_id,period,currency,line,type,description,quantity,unit_amount,amount_exact,amount"];
	const push = (line: string, type: string, description: string, numbers: unknown[]) =>
		rows.push(
			[
				csvText(invoice.customerId),
				invoice.period,
				invoice.currency,
				line,
				type,
				csvText(description),
				...numbers.map((n) => n ?? ""),
			].join(","),
		);
	(invoice.lines as Record<string, unknown>[]).forEach((line, i) => {
		push(String(i + 1), String(line.type), String(line.description), [
			line.billableQuantity,
			line.unitAmount,
			line.amountExact,
			line.amountDecimal,
		]);
		((line.children as Record<string, unknown>[] | undefined) ?? []).forEach((child, j) => {
			const description = child.type === "tier" ? `tier ${String(child.tier)}` : `${String(child.type)} adjustment`;
			push(`${i + 1}.${j + 1}`, String(child.type), description, [child.quantity, child.unitAmount, child.amountExact, ""]);
		});
	});
	push("", "total", "", ["", "", "", invoice.totalDecimal]);
	return rows.join("\r\n") + "\r\n";
}
