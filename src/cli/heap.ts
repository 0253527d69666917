import v8 from "node:v8";

// How far V8 lets the old generation grow past what the last full collection kept, in percent.
// V8 picks this factor itself, between 1.1 and 4: on a machine with much memory and a fast
// collector it picks 4, so a server whose live heap is 30 MB grew its old generation to 110 MB
// of garbage between two full collections and its RSS by as much. At 1.5 the old generation stays
// within half its live size of garbage, for a few more full collections of a small heap (about
// 10 ms each). See docs/benchmarks.md, "5. Memory".
export const heapGrowingPercent = 50;

// For the long-running server only. V8 reads this flag anew each time a full collection sets the
// next limit, so setting it at run time takes effect from the first one (unlike the size flags,
// which are fixed when the heap is made). An operator's own --heap-growing-percent wins.
export function boundHeapGrowth(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return;
  v8.setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`);
}
