// Plan definitions: their one validator, pure, and their JSON shape (amounts and quantities as exact decimal strings).
import { checkKeys } from "../event/fields.js";
import { METER_LIMITS, SLUG } from "../meters/model.js";
import type { FieldIssue } from "../shared/errors.js";
import { isPlainObject } from "../shared/objects.js";
import { CURRENCIES, formatScaled, parseAmount, parseQuantity, PRICE_SCALE, QUANTITY_SCALE } from "./money.js";
import type { PriceModel, RateCardPrice, Tier } from "./pricing.js";

export type RateCardTarget = { meter: string } | { sku: string; unit?: string };

export interface RateCard extends RateCardPrice {
	target: RateCardTarget;
	description?: string;
}

export interface PlanDefinition {
	key: string;
	name: string;
	currency: string;
	interval: "month" | "year";
	/** Picos, 0 if none. */
	flatFee: bigint;
	rateCards: RateCard[];
	description?: string;
}

export const PLAN_LIMITS = {
	maxKeyLength: 64,
	maxNameLength: 200,
	maxDescriptionLength: 1000,
	maxRateCards: 50,
	maxSkuLength: 200,
	maxUnitLength: 50,
	maxTiers: 20,
} as const;

export const PLAN_KEY_RULE =
	`must be 1-${PLAN_LIMITS.maxKeyLength} lower-case letters and digits, ` + 'words joined by single underscores ("pro_monthly")';
const DESCRIPTION_RULE = `must be a string of at most ${PLAN_LIMITS.maxDescriptionLength} characters`;
const PLAN_FIELDS: ReadonlySet<string> = new Set(["key", "name", "description", "currency", "interval", "flatFee", "rateCards"]);
const CARD_FIELDS: ReadonlySet<string> = new Set("meter sku unit description price freeQuantity minimumAmount maximumAmount".split(" "));
const PRICE_FIELDS: Readonly<Record<PriceModel["model"], ReadonlySet<string>>> = {
	unit: new Set(["model", "amount"]),
	graduated: new Set(["model", "tiers"]),
	volume: new Set(["model", "tiers"]),
	package: new Set(["model", "amount", "quantityPerPackage"]),
};
const TIER_FIELDS: ReadonlySet<string> = new Set(["upTo", "unitAmount", "flatAmount"]);
const ZERO_OK = { allowZero: true } as const;
const amountText = (picos: bigint) => formatScaled(picos, PRICE_SCALE);
const quantityText = (micros: bigint) => formatScaled(micros, QUANTITY_SCALE);
type CheckedCard = { target?: RateCardTarget; card?: RateCard };

/** Validates a plan definition: an issue per bad field (all of them), or the normalized plan. */
export function validatePlan(body: unknown, knownMeters: ReadonlySet<string>): { plan?: PlanDefinition; issues: FieldIssue[] } {
	if (!isPlainObject(body)) return { issues: [{ path: "body", message: "must be a JSON object" }] };
	const issues: FieldIssue[] = [];
	checkKeys(body, PLAN_FIELDS, "", issues);
	const { key, name, description, currency, interval } = body;

	if (key === undefined) issues.push({ path: "key", message: "is required" });
	else if (typeof key !== "string" || key.length > PLAN_LIMITS.maxKeyLength || !SLUG.test(key))
		issues.push({ path: "key", message: PLAN_KEY_RULE });
	if (name !== undefined && (typeof name !== "string" || name.length < 1 || name.length > PLAN_LIMITS.maxNameLength))
		issues.push({ path: "name", message: `must be a string of 1-${PLAN_LIMITS.maxNameLength} characters` });
	checkDescription(description, "description", issues);
	checkCurrency(currency, issues);
	if (interval === undefined) issues.push({ path: "interval", message: "is required" });
	else if (interval !== "month" && interval !== "year") issues.push({ path: "interval", message: 'must be "month" or "year"' });
	const flatFee = body.flatFee === undefined ? 0n : parseAmount(body.flatFee, "flatFee", issues, ZERO_OK);
	const rateCards = checkRateCards(body.rateCards, knownMeters, issues);

	if (issues.length > 0) return { issues };
	// Fields in one order, whatever order they were sent in: stored and shown the same way.
	const plan: PlanDefinition = {
		key: key as string,
		name: (name as string | undefined) ?? (key as string),
		currency: currency as string,
		interval: interval as PlanDefinition["interval"],
		flatFee: flatFee!,
		rateCards,
		...(description !== undefined && { description: description as string }),
	};
	return { plan, issues };
}

function checkDescription(value: unknown, path: string, issues: FieldIssue[]): void {
	if (value !== undefined && (typeof value !== "string" || value.length > PLAN_LIMITS.maxDescriptionLength))
		issues.push({ path, message: DESCRIPTION_RULE });
}

function checkCurrency(value: unknown, issues: FieldIssue[]): void {
	const fail = (message: string) => issues.push({ path: "currency", message });
	if (value === undefined) fail("is required");
	// Only a 3-letter value is echoed back, so a long or odd string never lands in the message.
	else if (typeof value !== "string" || !/^[A-Za-z]{3}$/.test(value)) fail("must be an ISO 4217 code such as USD");
	else if (Object.hasOwn(CURRENCIES, value)) return;
	else if (Object.hasOwn(CURRENCIES, value.toUpperCase())) fail(`must be upper case: ${value.toUpperCase()}`);
	else fail(`unknown currency ${value}; an ISO 4217 code such as USD`);
}

function checkRateCards(value: unknown, knownMeters: ReadonlySet<string>, issues: FieldIssue[]): RateCard[] {
	const cards: RateCard[] = [];
	if (value === undefined) return (issues.push({ path: "rateCards", message: "is required" }), cards);
	if (!Array.isArray(value) || value.length > PLAN_LIMITS.maxRateCards)
		return (issues.push({ path: "rateCards", message: `must be an array of at most ${PLAN_LIMITS.maxRateCards} rate cards` }), cards);
	const priced: { target: RateCardTarget; index: number }[] = [];
	for (const [i, item] of value.entries()) {
		const { target, card } = checkRateCard(item, `rateCards[${i}]`, knownMeters, issues);
		if (card) cards.push(card);
		// Checked even when the card has other issues, so that every issue is reported at once.
		if (!target) continue;
		const clash = priced.map((other) => overlap(other.target, target, other.index)).find((message) => message !== null);
		if (clash) issues.push({ path: `rateCards[${i}].${"meter" in target ? "meter" : "sku"}`, message: clash });
		else priced.push({ target, index: i });
	}
	return cards;
}

/** Why `later` prices usage that the card at `index` already prices, or null. A card without a unit covers every unit of its sku. */
function overlap(earlier: RateCardTarget, later: RateCardTarget, index: number): string | null {
	if ("meter" in earlier || "meter" in later) {
		const same = "meter" in earlier && "meter" in later && earlier.meter === later.meter;
		return same ? `prices the same meter as rateCards[${index}]` : null;
	}
	if (earlier.sku !== later.sku) return null;
	if (earlier.unit === undefined || later.unit === undefined)
		return `overlaps rateCards[${index}]: a card without a unit covers every unit of its sku`;
	return earlier.unit === later.unit ? `prices the same sku and unit as rateCards[${index}]` : null;
}

/** A rate card's target (when it is valid) and the card (when all of it is). */
function checkRateCard(value: unknown, at: string, meters: ReadonlySet<string>, issues: FieldIssue[]): CheckedCard {
	if (!isPlainObject(value)) return (issues.push({ path: at, message: "must be an object" }), {});
	const before = issues.length;
	checkKeys(value, CARD_FIELDS, `${at}.`, issues);
	const { meter, sku, unit, description } = value;
	let target: RateCardTarget | undefined;
	if (meter !== undefined && sku !== undefined)
		issues.push({ path: at, message: "names both a meter and a sku; a rate card prices exactly one of them" });
	else if (meter === undefined && sku === undefined) issues.push({ path: at, message: "must name a meter or a sku" });
	else if (meter !== undefined) {
		if (typeof meter !== "string" || meter.length > METER_LIMITS.maxSlugLength || !SLUG.test(meter))
			issues.push({ path: `${at}.meter`, message: "must be a meter slug" });
		else if (!meters.has(meter)) issues.push({ path: `${at}.meter`, message: `no meter named ${meter}` });
		else target = { meter };
		if (unit !== undefined) issues.push({ path: `${at}.unit`, message: "is for a sku rate card; a meter has no units" });
	} else {
		const okSku = checkText(sku, `${at}.sku`, PLAN_LIMITS.maxSkuLength, issues);
		const okUnit = unit === undefined || checkText(unit, `${at}.unit`, PLAN_LIMITS.maxUnitLength, issues);
		if (okSku && okUnit) target = { sku: sku as string, ...(unit !== undefined && { unit: unit as string }) };
	}
	checkDescription(description, `${at}.description`, issues);
	const price = checkPrice(value.price, `${at}.price`, issues);
	const freeQuantity = value.freeQuantity === undefined ? 0n : parseQuantity(value.freeQuantity, `${at}.freeQuantity`, issues);
	const minimumAmount = optionalAmount(value.minimumAmount, `${at}.minimumAmount`, issues);
	const maximumAmount = optionalAmount(value.maximumAmount, `${at}.maximumAmount`, issues);
	if (typeof minimumAmount === "bigint" && typeof maximumAmount === "bigint" && minimumAmount > maximumAmount)
		issues.push({ path: `${at}.minimumAmount`, message: `must not exceed maximumAmount (${amountText(maximumAmount)})` });
	if (issues.length > before || !target || !price) return { target };
	const card: RateCard = {
		target,
		...(description !== undefined && { description: description as string }),
		price,
		freeQuantity: freeQuantity!,
		minimumAmount: minimumAmount!,
		maximumAmount: maximumAmount!,
	};
	return { target, card };
}

function checkText(value: unknown, path: string, max: number, issues: FieldIssue[]): boolean {
	if (typeof value === "string" && value.length >= 1 && value.length <= max) return true;
	issues.push({ path, message: `must be a string of 1-${max} characters` });
	return false;
}

/** A minimum or maximum: absent or null is none (null is how planToJson writes none). */
function optionalAmount(value: unknown, path: string, issues: FieldIssue[]): bigint | null | undefined {
	return value === undefined || value === null ? null : parseAmount(value, path, issues);
}

function checkPrice(value: unknown, at: string, issues: FieldIssue[]): PriceModel | undefined {
	if (value === undefined) return (issues.push({ path: at, message: "is required" }), undefined);
	if (!isPlainObject(value)) return (issues.push({ path: at, message: "must be an object" }), undefined);
	const { model } = value;
	if (typeof model !== "string" || !Object.hasOwn(PRICE_FIELDS, model)) {
		issues.push({ path: `${at}.model`, message: `must be one of ${Object.keys(PRICE_FIELDS).join(", ")}` });
		return undefined;
	}
	const before = issues.length;
	checkKeys(value, PRICE_FIELDS[model as PriceModel["model"]], `${at}.`, issues);
	// Every field of a price model is required.
	for (const field of PRICE_FIELDS[model as PriceModel["model"]])
		if (value[field] === undefined) issues.push({ path: `${at}.${field}`, message: "is required" });
	const amount = value.amount === undefined ? undefined : parseAmount(value.amount, `${at}.amount`, issues, ZERO_OK);
	let price: PriceModel | undefined;
	if (model === "unit") {
		if (amount !== undefined) price = { model, amount };
	} else if (model === "package") {
		const { quantityPerPackage: per } = value;
		const quantityPerPackage =
			per === undefined ? undefined : parseQuantity(per, `${at}.quantityPerPackage`, issues, { positive: true });
		if (amount !== undefined && quantityPerPackage !== undefined) price = { model, amount, quantityPerPackage };
	} else {
		const tiers = value.tiers === undefined ? undefined : checkTiers(value.tiers, `${at}.tiers`, issues);
		if (tiers !== undefined) price = { model: model as "graduated" | "volume", tiers };
	}
	return issues.length > before ? undefined : price;
}

function checkTiers(value: unknown, at: string, issues: FieldIssue[]): Tier[] | undefined {
	if (!Array.isArray(value) || value.length < 1 || value.length > PLAN_LIMITS.maxTiers) {
		issues.push({ path: at, message: `must be an array of 1-${PLAN_LIMITS.maxTiers} tiers` });
		return undefined;
	}
	const before = issues.length;
	const tiers: Tier[] = [];
	let previous: bigint | undefined;
	for (const [i, item] of value.entries()) {
		const where = `${at}[${i}]`;
		if (!isPlainObject(item)) {
			issues.push({ path: where, message: "must be an object" });
			previous = undefined;
			continue;
		}
		checkKeys(item, TIER_FIELDS, `${where}.`, issues);
		const last = i === value.length - 1;
		let upTo: bigint | null | undefined = null;
		if (last) {
			if (item.upTo !== undefined && item.upTo !== null)
				issues.push({ path: `${where}.upTo`, message: "must be null: the last tier is unbounded" });
		} else if (item.upTo === undefined || item.upTo === null) {
			issues.push({ path: `${where}.upTo`, message: "must be a quantity: only the last tier may be unbounded" });
		} else {
			upTo = parseQuantity(item.upTo, `${where}.upTo`, issues, { positive: true });
			if (upTo !== undefined && previous !== undefined && upTo <= previous)
				issues.push({ path: `${where}.upTo`, message: `must be greater than the tier before's (${quantityText(previous)})` });
		}
		previous = upTo ?? undefined;
		if (item.unitAmount === undefined) issues.push({ path: `${where}.unitAmount`, message: "is required" });
		const unitAmount = item.unitAmount === undefined ? undefined : parseAmount(item.unitAmount, `${where}.unitAmount`, issues, ZERO_OK);
		const flatAmount = item.flatAmount === undefined ? 0n : parseAmount(item.flatAmount, `${where}.flatAmount`, issues, ZERO_OK);
		if (upTo !== undefined && unitAmount !== undefined && flatAmount !== undefined) tiers.push({ upTo, unitAmount, flatAmount });
	}
	return issues.length > before ? undefined : tiers;
}

// ---- JSON ----

/** The API shape of a plan: what validatePlan accepts, with every default written out and decimals minimal. */
export function planToJson(plan: PlanDefinition): Record<string, unknown> {
	return {
		key: plan.key,
		name: plan.name,
		...(plan.description !== undefined && { description: plan.description }),
		currency: plan.currency,
		interval: plan.interval,
		flatFee: amountText(plan.flatFee),
		rateCards: plan.rateCards.map((card) => ({
			...card.target,
			...(card.description !== undefined && { description: card.description }),
			price: priceToJson(card.price),
			freeQuantity: quantityText(card.freeQuantity),
			minimumAmount: card.minimumAmount === null ? null : amountText(card.minimumAmount),
			maximumAmount: card.maximumAmount === null ? null : amountText(card.maximumAmount),
		})),
	};
}

function priceToJson(price: PriceModel): Record<string, unknown> {
	switch (price.model) {
		case "unit":
			return { model: price.model, amount: amountText(price.amount) };
		case "package":
			return { model: price.model, amount: amountText(price.amount), quantityPerPackage: quantityText(price.quantityPerPackage) };
		default:
			return {
				model: price.model,
				tiers: price.tiers.map((tier) => ({
					upTo: tier.upTo === null ? null : quantityText(tier.upTo),
					unitAmount: amountText(tier.unitAmount),
					flatAmount: amountText(tier.flatAmount),
				})),
			};
	}
}

/**
 * A plan back from what planToJson wrote, checked by validatePlan itself. Its meters are taken as
 * known: a stored plan keeps pricing a meter deleted since. Throws on anything validatePlan refuses.
 */
export function planFromJson(json: unknown): PlanDefinition {
	const cards = isPlainObject(json) && Array.isArray(json.rateCards) ? json.rateCards : [];
	const meters = new Set(cards.flatMap((card) => (isPlainObject(card) && typeof card.meter === "string" ? [card.meter] : [])));
	const { plan, issues } = validatePlan(json, meters);
	if (!plan) throw new Error(`corrupt stored plan: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")}`);
	return plan;
}
