// Time-series charts with uPlot (uPlot.iife.min.js, loaded before this module). Colors come from
// the CSS custom properties, so light and dark follow prefers-color-scheme; a scheme change or a
// resize redraws.
import { formatFull, formatTick } from "./format.js";

function cssVar(name) {
	return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const INTEGER_INCRS = [1, 2, 5].flatMap((m) => Array.from({ length: 12 }, (_, e) => m * 10 ** e)).sort((a, b) => a - b);

/** The indices of values whose neighbours are both missing. */
function isolated(u, seriesIdx) {
	const values = u.data[seriesIdx];
	const out = [];
	for (let i = 0; i < values.length; i++) {
		if (values[i] === null || values[i] === undefined) continue;
		if ((values[i - 1] ?? null) === null && (values[i + 1] ?? null) === null) out.push(i);
	}
	return out;
}

/** The content width of the chart's box (clientWidth includes its padding). */
function innerWidth(el) {
	const style = getComputedStyle(el);
	return Math.max(el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight), 100);
}

function chartHeight() {
	return window.matchMedia("(max-width: 640px)").matches ? 180 : 220;
}

/**
 * A chart in `container` with one line per entry of `lines` ({label, color, fill?}: CSS variable
 * names) and values formatted by `format`; `integers` keeps the y ticks on whole numbers. update() takes the window starts (ms) and one array of
 * values per line.
 */
export function createChart(container, lines, format, { integers = false } = {}) {
	let plot = null;
	let data = [[], ...lines.map(() => [])];
	let interval = "hour";
	let span = 0;

	const build = () => {
		plot?.destroy();
		container.textContent = "";
		const axis = {
			stroke: cssVar("--muted"),
			grid: { stroke: cssVar("--grid"), width: 1 },
			ticks: { stroke: cssVar("--grid"), width: 1 },
			font: `12px ${cssVar("--font")}`,
		};
		plot = new window.uPlot(
			{
				width: innerWidth(container),
				height: chartHeight(),
				padding: [12, 20, 0, 0],
				cursor: { points: { size: 7 }, drag: { x: false, y: false } },
				legend: { show: true, live: true },
				scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max * 1.1, min, 1)] } },
				series: [
					{ label: "Time", value: (_u, ts) => (ts === null || ts === undefined ? "—" : formatFull(ts * 1000)) },
					...lines.map((line) => ({
						label: line.label,
						stroke: cssVar(line.color),
						fill: line.fill ? cssVar(line.fill) : undefined,
						width: 2,
						// A window between two empty ones has no line to be on: it is drawn as a dot.
						points: { show: true, size: 6, fill: cssVar(line.color), filter: isolated },
						value: (_u, v) => format(v),
					})),
				],
				axes: [
					{ ...axis, space: 70, size: 36, values: (_u, splits) => splits.map((s) => formatTick(s * 1000, interval, span)) },
					{
						...axis,
						size: 64,
						// Counts tick on whole numbers only.
						...(integers ? { incrs: INTEGER_INCRS } : {}),
						values: (_u, splits) => splits.map((s) => format(s)),
					},
				],
			},
			data,
			container,
		);
	};

	let width = 0;
	new ResizeObserver(() => {
		if (!plot || container.clientWidth === width) return;
		width = container.clientWidth;
		plot.setSize({ width: innerWidth(container), height: chartHeight() });
	}).observe(container);
	window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => plot && build());

	return {
		update(starts, values, windowSize) {
			interval = windowSize;
			span = starts.length > 1 ? starts[starts.length - 1] - starts[0] : 0;
			data = [starts.map((ms) => ms / 1000), ...values];
			if (plot) plot.setData(data);
			else build();
		},
	};
}
