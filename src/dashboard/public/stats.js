// The stat cards (events, DAU, MAU, error rate, p95) and the two charts, for the page's range and
// filters, each compared with the period before.
import { createChart } from "./charts.js";
import { $, byTestId, iso, section, sum } from "./dom.js";
import { DASH, formatChange, formatCount, formatMs, formatRate } from "./format.js";
import { filterParams, isFiltered, previousLabel, state, timeseries } from "./state.js";

const DAY = 86_400_000;
const charts = {};

export async function loadStats(range, generation) {
	const span = range.to - range.from;
	const filters = filterParams();
	const params = { interval: range.interval, from: iso(range.from - span), to: iso(range.to), ...filters };
	const today = Math.floor(Date.now() / DAY) * DAY;
	const now = new Date();
	const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
	await section($("stats-error"), async () => {
		const [count, errors, p50, p95, p99, dau, mau] = await Promise.all([
			...["count", "errors", "duration_p50", "duration_p95", "duration_p99"].map((metric) => timeseries({ metric, ...params })),
			timeseries({ metric: "unique_users", interval: "day", from: iso(today - DAY), to: iso(today + DAY), ...filters }),
			timeseries({
				metric: "unique_users",
				interval: "month",
				from: iso(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)),
				to: iso(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1)),
				...filters,
			}),
		]);
		if (generation !== state.generation) return;
		$("stats-error").replaceChildren();
		renderStats(range, { count, errors, p50, p95, p99, dau, mau, monthStart, today });
	});
}

/** The points of a one-series answer, split into the range and the period before it. */
function splitPoints(answer, from) {
	const points = answer.series[0]?.points ?? [];
	const start = (p) => Date.parse(p.start);
	return { current: points.filter((p) => start(p) >= from), previous: points.filter((p) => start(p) < from) };
}

function peak(points) {
	const values = points.map((p) => p.value).filter((v) => v !== null);
	return values.length === 0 ? null : Math.max(...values);
}

function renderChange(testId, change, suffix, upIsGood = true) {
	const node = byTestId(testId);
	node.className = "stat-change";
	if (!change) {
		node.textContent = `${DASH} vs ${suffix}`;
		return;
	}
	const arrow = change.direction > 0 ? "▲" : change.direction < 0 ? "▼" : "•";
	node.textContent = `${arrow} ${change.text} vs ${suffix}`;
	if (change.direction !== 0) node.classList.add(change.direction > 0 === upIsGood ? "good" : "bad");
}

function renderStats(range, answers) {
	const count = splitPoints(answers.count, range.from);
	const errors = splitPoints(answers.errors, range.from);
	const events = sum(count.current);
	const previousEvents = sum(count.previous);
	byTestId("stat-events").textContent = formatCount(events);
	renderChange("stat-events-change", formatChange(events, previousEvents), previousLabel());

	const rate = events === 0 ? null : sum(errors.current) / events;
	const previousRate = previousEvents === 0 ? null : sum(errors.previous) / previousEvents;
	byTestId("stat-error-rate").textContent = formatRate(rate);
	renderChange("stat-error-rate-change", formatChange(rate, previousRate, "points"), previousLabel(), false);

	const p95 = splitPoints(answers.p95, range.from);
	const worst = peak(p95.current);
	byTestId("stat-p95").textContent = formatMs(worst);
	renderChange("stat-p95-change", formatChange(worst, peak(p95.previous)), previousLabel(), false);

	const dau = answers.dau.series[0]?.points ?? [];
	const today = dau.find((p) => Date.parse(p.start) === answers.today)?.value ?? 0;
	const yesterday = dau.find((p) => Date.parse(p.start) === answers.today - DAY)?.value ?? 0;
	byTestId("stat-dau").textContent = formatCount(today);
	renderChange("stat-dau-change", formatChange(today, yesterday), "yesterday");

	const mau = answers.mau.series[0]?.points ?? [];
	const month = mau.find((p) => Date.parse(p.start) === answers.monthStart)?.value ?? 0;
	const lastMonth = mau.find((p) => Date.parse(p.start) < answers.monthStart)?.value ?? 0;
	byTestId("stat-mau").textContent = formatCount(month);
	renderChange("stat-mau-change", formatChange(month, lastMonth), "last month");

	// The "send your first event" card is for a tenant with no events, not for a narrow filter.
	$("events-empty").hidden = !(events === 0 && !isFiltered());

	const starts = count.current.map((p) => Date.parse(p.start));
	const values = (answer) => splitPoints(answer, range.from).current.map((p) => p.value);
	charts.events ??= createChart(
		$("chart-events"),
		[
			{ label: "Events", color: "--chart-1", fill: "--chart-1-fill" },
			{ label: "Errors", color: "--danger" },
		],
		formatCount,
		{ integers: true },
	);
	charts.latency ??= createChart(
		$("chart-latency"),
		[
			{ label: "p50", color: "--chart-2" },
			{ label: "p95", color: "--chart-1" },
			{ label: "p99", color: "--chart-3" },
		],
		formatMs,
	);
	charts.events.update(starts, [count.current.map((p) => p.value), errors.current.map((p) => p.value)], range.interval);
	charts.latency.update(starts, [values(answers.p50), values(answers.p95), values(answers.p99)], range.interval);
}
