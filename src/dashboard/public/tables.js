// The top-10 tables (events, routes, status codes, countries) over the page's range. A click or
// Enter on a row filters the page to it (filters.js). With a route, status or country filter, the
// events table and the filtered dimension's own table are still counted; the other dimensions
// cannot be (the series keep each dimension on its own rows), so their tables say so.
import { byTestId, h, iso, section, sum } from "./dom.js";
import { formatCount } from "./format.js";
import { cover } from "./ranges.js";
import { BREAKDOWNS, capitalized, filterParams, isSelected, keyLabel, state, timeseries } from "./state.js";

const TOP_N = 10;
const shareFormat = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 0 });

/** The filters a breakdown's table is counted with, or null when the API cannot count it. */
function tableParams(breakdown) {
	// A table never narrows to its own selection: it keeps showing the other rows beside it.
	if (breakdown === "event") return filterParams({ withEvent: false });
	if (state.dimension === null) return filterParams();
	if (state.dimension.kind === breakdown) return filterParams({ withDimension: false });
	return null;
}

/** Loads and renders the four tables; `onSelect(breakdown, key)` is called for a chosen row. */
export async function loadTops(range, generation, onSelect) {
	await Promise.all(
		BREAKDOWNS.map((breakdown) => {
			const table = byTestId(`top-${breakdown}`);
			const params = tableParams(breakdown);
			if (params === null) {
				renderUnavailable(breakdown, table);
				return null;
			}
			return section(table, async () => {
				const rows = await topOf(breakdown, range, params);
				if (generation !== state.generation) return;
				renderTop(breakdown, table, rows, params, onSelect);
			});
		}),
	);
}

/** Counts per breakdown value over the range, summed over as few whole windows as cover it. */
async function topOf(breakdown, range, params) {
	const pieces = cover(range.from, range.to, range.interval);
	const answers = await Promise.all(
		pieces.map((piece) =>
			timeseries({ metric: "count", interval: piece.interval, from: iso(piece.from), to: iso(piece.to), breakdown, ...params }),
		),
	);
	const totals = new Map();
	for (const answer of answers) {
		for (const series of answer.series) {
			const key = series.key[breakdown] ?? null;
			totals.set(key, (totals.get(key) ?? 0) + sum(series.points));
		}
	}
	const rows = [...totals].filter(([, n]) => n > 0).map(([key, count]) => ({ key, count }));
	const total = rows.reduce((n, r) => n + r.count, 0);
	rows.sort((a, b) => b.count - a.count || String(a.key ?? "").localeCompare(String(b.key ?? "")));
	return { rows: rows.slice(0, TOP_N), total, distinct: rows.length };
}

function head(breakdown) {
	return h(
		"thead",
		{},
		h(
			"tr",
			{},
			h("th", { scope: "col" }, capitalized(breakdown)),
			h("th", { scope: "col", class: "num" }, "Events"),
			h("th", { scope: "col", class: "num share" }, "Share"),
		),
	);
}

function markAvailable(table, available) {
	table.closest(".top")?.classList.toggle("unavailable", !available);
	if (available) delete table.dataset.unavailable;
	else table.dataset.unavailable = "true";
}

function renderUnavailable(breakdown, table) {
	markAvailable(table, false);
	const note = `Breakdowns by ${breakdown} are not available while filtering by ${state.dimension.kind}`;
	table.replaceChildren(
		head(breakdown),
		h("tbody", {}, h("tr", {}, h("td", { colspan: 3, class: "unavailable-cell", "data-testid": "top-unavailable" }, note))),
	);
}

/** " for page_view on route /pricing": the filters a table's counts are narrowed by. */
function narrowedBy(params) {
	const parts = [];
	if (params.event !== undefined) parts.push(params.event);
	for (const kind of ["route", "status", "country"]) {
		if (params[kind] !== undefined) parts.push(`${kind} ${keyLabel(kind, state.dimension.value)}`);
	}
	return parts.length === 0 ? "" : ` for ${parts.join(" on ")}`;
}

function renderTop(breakdown, table, { rows, total, distinct }, params, onSelect) {
	markAvailable(table, true);
	if (rows.length === 0) {
		table.replaceChildren(
			head(breakdown),
			h("tbody", {}, h("tr", {}, h("td", { colspan: 3, class: "empty-cell" }, `No events${narrowedBy(params)} in this range`))),
		);
		return;
	}
	const body = h(
		"tbody",
		{},
		rows.map((row) => {
			const label = keyLabel(breakdown, row.key);
			const selected = isSelected(breakdown, row.key);
			const bar = h("span", { class: "bar", "aria-hidden": "true" });
			bar.style.width = `${Math.max((row.count / total) * 100, 0.5)}%`;
			return h(
				"tr",
				{
					class: selected ? "row selected" : "row",
					"data-testid": `top-${breakdown}-row`,
					"data-key": row.key ?? "",
					"data-null": row.key === null ? "true" : null,
					onclick: () => onSelect(breakdown, row.key),
				},
				h(
					"td",
					{ class: "name" },
					bar,
					h(
						"button",
						{
							type: "button",
							class: "row-button",
							"aria-pressed": String(selected),
							title: selected ? `Clear the ${breakdown} filter` : `Filter the page to ${breakdown} ${label}`,
						},
						label,
					),
				),
				h("td", { class: "num", "data-testid": "top-count" }, formatCount(row.count)),
				h("td", { class: "num share" }, shareFormat.format(row.count / total)),
			);
		}),
	);
	const foot =
		distinct > rows.length
			? h("tfoot", {}, h("tr", {}, h("td", { colspan: 3, class: "muted small" }, `${formatCount(distinct - rows.length)} more`)))
			: null;
	table.replaceChildren(head(breakdown), body, ...(foot ? [foot] : []));
}
