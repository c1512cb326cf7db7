// Price models, pure: what one rate card charges for one measured quantity, exactly (scale 18), never rounded.
//
// Rules (quantities in micro-units, prices in picos per unit; picos × micros is already scale 18):
// - freeQuantity is deducted first: billable = max(0, quantity − freeQuantity); a negative quantity bills as 0.
// - unit: unitAmount × billable.
// - graduated: tier i covers (upTo[i−1], upTo[i]], the upper bound inclusive: a quantity exactly at upTo stays
//   in that tier, one micro-unit past it enters the next. Each tier prices its own units at its unitAmount.
//   A tier's flatAmount is charged once billable enters the tier (billable > its lower bound), except the
//   first tier's, which is always charged, also at zero usage (Stripe's rule: a flat first tier is a base fee).
// - volume: the one tier containing billable (the first whose upTo ≥ billable, else the unbounded last; 0 → the
//   first) prices every unit: unitAmount × billable + that tier's flatAmount.
// - package: packages = ceil(billable / quantityPerPackage), each charged amount; no usage, no package.
// - minimumAmount / maximumAmount bound the usage amount: below the minimum an adjustment adds the difference,
//   above the maximum one takes the excess off. Rounding to the currency happens once per invoice line, elsewhere.
import { EXACT_SCALE, PRICE_SCALE } from "./money.js";

export interface Tier {
	/** Micro-units, the tier's inclusive upper bound; null = unbounded (the last tier only). */
	upTo: bigint | null;
	/** Picos per unit. */
	unitAmount: bigint;
	/** Picos. */
	flatAmount: bigint;
}

export type PriceModel =
	| { model: "unit"; amount: bigint }
	| { model: "graduated"; tiers: Tier[] }
	| { model: "volume"; tiers: Tier[] }
	/** amount in picos per package; quantityPerPackage in micro-units, > 0. */
	| { model: "package"; amount: bigint; quantityPerPackage: bigint };

export interface RateCardPrice {
	price: PriceModel;
	/** Micro-units deducted before pricing. */
	freeQuantity: bigint;
	/** Picos. */
	minimumAmount: bigint | null;
	/** Picos. */
	maximumAmount: bigint | null;
}

export interface TierLine {
	/** 1-based. */
	tier: number;
	/** Micro-units, the tier's exclusive lower bound. */
	from: bigint;
	upTo: bigint | null;
	/** Micro-units priced in this tier. */
	quantity: bigint;
	unitAmount: bigint;
	flatAmount: bigint;
	/** Scale 18. */
	amount: bigint;
}

export interface PricedQuantity {
	/** Micro-units measured. */
	quantity: bigint;
	/** Micro-units deducted (≤ quantity). */
	freeQuantity: bigint;
	/** quantity − freeQuantity, ≥ 0. */
	billable: bigint;
	/** The package model only. */
	packages?: bigint;
	/** Graduated: every tier charged; volume: the one tier; otherwise empty. */
	tiers: TierLine[];
	/** Scale 18, before the minimum or maximum. */
	usageAmount: bigint;
	/** Scale 18: positive for a minimum, negative for a maximum. */
	adjustment: { kind: "minimum" | "maximum"; amount: bigint } | null;
	/** Scale 18: usageAmount + adjustment. */
	amount: bigint;
}

/** Picos × this = scale 18 (a flat amount or a whole package has no quantity to multiply by). */
const PICOS_TO_EXACT = 10n ** BigInt(EXACT_SCALE - PRICE_SCALE);

/** What `card` charges for `quantity` micro-units, per the module header's rules. */
export function priceQuantity(card: RateCardPrice, quantity: bigint): PricedQuantity {
	const measured = quantity > 0n ? quantity : 0n;
	const freeQuantity = card.freeQuantity < measured ? card.freeQuantity : measured;
	const billable = measured - freeQuantity;
	const { price } = card;
	let tiers: TierLine[] = [];
	let packages: bigint | undefined;
	let usageAmount: bigint;
	switch (price.model) {
		case "unit":
			usageAmount = price.amount * billable;
			break;
		case "graduated":
			tiers = graduated(checkTiers(price.tiers), billable);
			usageAmount = tiers.reduce((sum, line) => sum + line.amount, 0n);
			break;
		case "volume":
			tiers = [volume(checkTiers(price.tiers), billable)];
			usageAmount = tiers[0]!.amount;
			break;
		case "package": {
			if (price.quantityPerPackage <= 0n) throw new RangeError("priceQuantity: quantityPerPackage must be positive");
			packages = (billable + price.quantityPerPackage - 1n) / price.quantityPerPackage;
			usageAmount = price.amount * packages * PICOS_TO_EXACT;
			break;
		}
	}
	const adjustment = bound(usageAmount, card);
	return {
		quantity,
		freeQuantity,
		billable,
		...(packages !== undefined && { packages }),
		tiers,
		usageAmount,
		adjustment,
		amount: usageAmount + (adjustment?.amount ?? 0n),
	};
}

/** Each tier reached prices its own units; the first tier is always listed, so its flat fee is always charged. */
function graduated(tiers: readonly Tier[], billable: bigint): TierLine[] {
	const lines: TierLine[] = [];
	let from = 0n;
	for (const [i, tier] of tiers.entries()) {
		if (i > 0 && billable <= from) break;
		const top = tier.upTo === null || billable < tier.upTo ? billable : tier.upTo;
		lines.push(line(i, from, tier, top > from ? top - from : 0n));
		if (tier.upTo === null) break;
		from = tier.upTo;
	}
	return lines;
}

/** The tier billable falls in prices all of it. */
function volume(tiers: readonly Tier[], billable: bigint): TierLine {
	let from = 0n;
	for (const [i, tier] of tiers.entries()) {
		if (tier.upTo === null || billable <= tier.upTo) return line(i, from, tier, billable);
		from = tier.upTo;
	}
	// checkTiers guarantees an unbounded last tier.
	throw new RangeError("priceQuantity: no tier contains the quantity");
}

function line(index: number, from: bigint, tier: Tier, quantity: bigint): TierLine {
	const amount = tier.unitAmount * quantity + tier.flatAmount * PICOS_TO_EXACT;
	return { tier: index + 1, from, upTo: tier.upTo, quantity, unitAmount: tier.unitAmount, flatAmount: tier.flatAmount, amount };
}

/** Tiers as validatePlan leaves them: at least one, bounds increasing, only the last unbounded. A bad one is a bug. */
function checkTiers(tiers: readonly Tier[]): readonly Tier[] {
	const last = tiers.length - 1;
	const ok =
		last >= 0 &&
		tiers.every((tier, i) => (i === last ? tier.upTo === null : tier.upTo !== null && (i === 0 || tier.upTo > tiers[i - 1]!.upTo!)));
	if (!ok) throw new RangeError("priceQuantity: tiers must increase and end with one unbounded tier");
	return tiers;
}

/** The adjustment a minimum or maximum makes to the usage amount, if any. */
function bound(usage: bigint, card: RateCardPrice): PricedQuantity["adjustment"] {
	if (card.minimumAmount !== null) {
		const minimum = card.minimumAmount * PICOS_TO_EXACT;
		if (usage < minimum) return { kind: "minimum", amount: minimum - usage };
	}
	if (card.maximumAmount !== null) {
		const maximum = card.maximumAmount * PICOS_TO_EXACT;
		if (usage > maximum) return { kind: "maximum", amount: maximum - usage };
	}
	return null;
}
