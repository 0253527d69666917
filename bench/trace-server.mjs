// Loaded into the server under `npm run bench -- --trace` (node --import): notes, with wall-clock
// times so that they can be laid beside the load generator's calls, every turn of the event loop
// as seen by a 5 ms interval timer, every collection V8 reports, and what the stores publish about
// their group commits and batches. Written to BENCH_TRACE_FILE when the server exits. Plain
// JavaScript: the server runs its build, without a TypeScript loader.
import { subscribe } from "node:diagnostics_channel";
import { writeFileSync } from "node:fs";
import { PerformanceObserver, performance } from "node:perf_hooks";

const file = process.env.BENCH_TRACE_FILE;
const wall = (t) => performance.timeOrigin + t;
const trace = { ticks: [], collections: [], flushes: [], batches: [] };

subscribe("latchkey:sqlite:flush", (m) => trace.flushes.push({ at: wall(performance.now()), ...m }));
subscribe("latchkey:postgres:batch", (m) => trace.batches.push({ at: wall(performance.now()), ...m }));
new PerformanceObserver((list) => {
  for (const e of list.getEntries())
    trace.collections.push({ at: wall(e.startTime), ms: e.duration, kind: e.detail?.kind ?? 0 });
}).observe({ entryTypes: ["gc"] });
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  trace.ticks.push({ at: wall(last), ms: now - last });
  last = now;
}, 5).unref();

if (file) process.once("exit", () => writeFileSync(file, JSON.stringify(trace)));
