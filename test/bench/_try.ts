import { measureClient } from "./client.ts";
const progress = { phase() {}, update(f: number, d?: string) { process.stderr.write(`${f.toFixed(2)} ${d}\n`); }, finish() {} };
const t = performance.now();
const r = await measureClient(progress, { rounds: 2, iterations: 100, callsPerIteration: 100 });
console.log(JSON.stringify(r, null, 1), performance.now() - t);
