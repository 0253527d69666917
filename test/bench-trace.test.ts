// The benchmark's --trace summary (bench/trace.ts) decides what a reader concludes about the
// slowest calls, so its arithmetic is pinned here on a small trace made by hand.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TracedCall } from "../bench/load.ts";
import { formatTrace, type ServerTrace, summarizeTrace } from "../bench/trace.ts";

const t0 = 1_000_000;

// 100 calls of 10 ms, one every 10 ms, and one of 50 ms that a major collection overlapped.
const calls: TracedCall[] = [
  ...Array.from({ length: 100 }, (_, i) => ({ at: t0 + i * 10, ms: 10 })),
  { at: t0 + 500, ms: 50 },
];

const server: ServerTrace = {
  ticks: [
    { at: t0 + 10, ms: 5 },
    { at: t0 + 15, ms: 30 },
    { at: t0 + 45, ms: 12 },
    // Outside the calls' window: not counted.
    { at: t0 + 5000, ms: 99 },
  ],
  collections: [
    { at: t0 + 520, ms: 8, kind: 4 },
    { at: t0 + 100, ms: 2, kind: 1 },
    { at: t0 + 300, ms: 3, kind: 1 },
  ],
  flushes: [
    { at: t0 + 20, writes: 10, commitMs: 2, flushMs: 5 },
    { at: t0 + 40, writes: 30, commitMs: 4, flushMs: 9 },
  ],
  batches: [
    { at: t0 + 10, name: "lookups", units: 4, statements: 4, waitedMs: 1, roundTripMs: 3 },
    { at: t0 + 20, name: "appends", units: 2, statements: 6, waitedMs: 2, roundTripMs: 10 },
    { at: t0 + 30, name: "appends", units: 4, statements: 10, waitedMs: 4, roundTripMs: 20 },
  ],
};

describe("the benchmark's trace summary", () => {
  const s = summarizeTrace(server, calls);

  it("sets aside the calls a full collection overlapped", () => {
    assert.equal(s.calls.count, 101);
    assert.equal(s.calls.maxMs, 50);
    assert.equal(s.callsClearOfCollections.count, 99, "all but the 50 ms call and the 10 ms call at 520");
    assert.equal(s.callsClearOfCollections.maxMs, 10);
    assert.equal(s.callsClearOfCollections.p99OverMean, 1);
  });

  it("counts the long turns, the collections by kind, the commits and the batches inside the window", () => {
    assert.deepEqual([s.longTurns.count, s.longTurns.maxMs], [2, 30]);
    assert.deepEqual(s.collections, [
      { kind: "minor", count: 2, totalMs: 5, maxMs: 3 },
      { kind: "major", count: 1, totalMs: 8, maxMs: 8 },
    ]);
    assert.equal(s.flushes?.count, 2);
    assert.equal(s.flushes?.writesMean, 20);
    assert.equal(s.flushes?.commits.maxMs, 4);
    const appends = s.batches.find((b) => b.name === "appends");
    assert.equal(appends?.unitsMean, 3);
    assert.equal(appends?.statementsMean, 8);
    assert.equal(appends?.roundTrip.meanMs, 15);
    // Two batches over the calls' 1 s window.
    assert.equal(appends?.perSecond, 2);
  });

  it("takes a long run's calls, more than a function's arguments can hold", () => {
    const many = Array.from({ length: 300_000 }, (_, i) => ({ at: t0 + i, ms: 1 }));
    assert.equal(summarizeTrace(server, many).calls.count, 300_000);
  });

  it("says it in lines a reader can take in", () => {
    const text = formatTrace("rest", s);
    assert.match(text, /^REST trace/);
    assert.match(text, /calls that overlapped no major or incremental collection: 99/);
    assert.match(text, /SQLite group commits: 2, 20\.0 writes each/);
    assert.match(text, /PostgreSQL appends: 2 batches\/s of 3\.0 units \(8\.0 statements\)/);
  });
});
