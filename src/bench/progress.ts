// A single-line progress bar on stderr: the run's phases are weighted by their expected seconds.
// Without a terminal (CI, a child process) it prints one line per step instead of redrawing.

export interface Phase {
	name: string;
	/** Expected seconds, to weight the bar. */
	weight: number;
}

export interface Progress {
	/** Starts a phase (by name) at 0 %. */
	phase(name: string): void;
	/** Where the current phase is (0–1) and what it is doing. */
	update(fraction: number, detail?: string): void;
	/** Clears the bar. */
	finish(): void;
}

const WIDTH = 28;

export function progressBar(phases: Phase[], stream: NodeJS.WriteStream = process.stderr): Progress {
	const total = phases.reduce((sum, phase) => sum + phase.weight, 0) || 1;
	const started = Date.now();
	const tty = stream.isTTY === true;
	let index = -1;
	let fraction = 0;
	let detail = "";
	let lastLine = "";
	let lastPhase = "";
	let lastPrinted = 0;

	const elapsed = () => {
		const seconds = Math.floor((Date.now() - started) / 1000);
		return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
	};
	const overall = () => {
		const done = phases.slice(0, Math.max(index, 0)).reduce((sum, phase) => sum + phase.weight, 0);
		return Math.min(1, (done + (phases[index]?.weight ?? 0) * fraction) / total);
	};
	const render = () => {
		const share = overall();
		const filled = Math.round(share * WIDTH);
		const name = phases[index]?.name ?? "";
		const text = `${name}${detail ? ` · ${detail}` : ""}`;
		if (tty) {
			const line = `[${"█".repeat(filled)}${"░".repeat(WIDTH - filled)}] ${String(Math.round(share * 100)).padStart(3)}%  ${elapsed()}  ${text}`;
			const columns = stream.columns || 100;
			stream.write(`\r${line.slice(0, columns - 1).padEnd(columns - 1)}`);
		} else if (name !== lastPhase || (text !== lastLine && Date.now() - lastPrinted >= 5000)) {
			// Without a terminal: a line per phase, and at most one every 5 s within it.
			lastPhase = name;
			lastLine = text;
			lastPrinted = Date.now();
			stream.write(`bench ${String(Math.round(share * 100)).padStart(3)}% ${elapsed()} ${text}\n`);
		}
	};
	const timer = tty ? setInterval(render, 250) : undefined;
	timer?.unref();

	return {
		phase(name) {
			index = phases.findIndex((phase) => phase.name === name);
			fraction = 0;
			detail = "";
			render();
		},
		update(value, text) {
			fraction = Math.max(0, Math.min(1, value));
			if (text !== undefined) detail = text;
			render();
		},
		finish() {
			if (timer) clearInterval(timer);
			if (tty) stream.write(`\r${" ".repeat((stream.columns || 100) - 1)}\r`);
		},
	};
}
