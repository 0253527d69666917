// What `npm run bench -- --trace` found: the load generator's calls laid beside the server's trace
// (bench/trace-server.mjs), to say what the slowest calls waited for. docs/benchmarks.md, 12,
// was first worked out this way by hand.
import type { TracedCall } from "./load.ts";
import { type CallStats, callStats } from "./stats.ts";

export interface ServerTrace {
  // Gaps between the ticks of a 5 ms interval timer: a tick late by much is a long turn.
  readonly ticks: readonly { at: number; ms: number }[];
  // perf_hooks' gc entries; kind as in NODE_PERFORMANCE_GC_* (1 minor, 4 major, 8 incremental).
  readonly collections: readonly { at: number; ms: number; kind: number }[];
  readonly flushes: readonly { at: number; writes: number; commitMs: number; flushMs: number }[];
  readonly batches: readonly {
    at: number;
    name: string;
    units: number;
    statements: number;
    waitedMs: number;
    roundTripMs: number;
  }[];
}

export interface TraceSummary {
  readonly calls: CallStats & { readonly p99OverMean: number };
  // The calls that overlapped no major or incremental collection: if their p99 sits as far above
  // their mean as all calls' does, collections are not what sets p99.
  readonly callsClearOfCollections: CallStats & { readonly p99OverMean: number };
  // Turns of the event loop longer than 10 ms, as the interval timer saw them.
  readonly longTurns: CallStats;
  readonly collections: readonly { kind: string; count: number; totalMs: number; maxMs: number }[];
  readonly flushes: (CallStats & { readonly writesMean: number; readonly commits: CallStats }) | null;
  readonly batches: readonly {
    name: string;
    perSecond: number;
    unitsMean: number;
    statementsMean: number;
    waited: CallStats;
    roundTrip: CallStats;
  }[];
}

const collectionKinds: Record<number, string> = {
  1: "minor",
  4: "major",
  8: "incremental",
  16: "weak callbacks",
};
const isFull = (kind: number) => kind === 4 || kind === 8;
const mean = (values: readonly number[]) =>
  values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
const withRatio = (s: CallStats) => ({ ...s, p99OverMean: s.meanMs > 0 ? s.p99Ms / s.meanMs : 0 });

export function summarizeTrace(server: ServerTrace, calls: readonly TracedCall[]): TraceSummary {
  // A loop, not Math.min(...calls): a long run's calls outnumber what a call's arguments can hold.
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  for (const c of calls) {
    from = Math.min(from, c.at);
    to = Math.max(to, c.at + c.ms);
  }
  const seconds = Math.max(1e-9, (to - from) / 1000);
  const inWindow = <T extends { at: number }>(rows: readonly T[]) =>
    rows.filter((r) => r.at >= from && r.at <= to);

  const full = server.collections.filter((c) => isFull(c.kind));
  const overlapsFull = (c: TracedCall) => full.some((g) => g.at < c.at + c.ms && g.at + g.ms > c.at);

  const collections = inWindow(server.collections);
  const kinds = [...new Set(collections.map((c) => c.kind))].sort((a, b) => a - b);
  const flushes = inWindow(server.flushes);
  const batches = inWindow(server.batches);
  const names = [...new Set(batches.map((b) => b.name))].sort();

  return {
    calls: withRatio(callStats(calls.map((c) => c.ms))),
    callsClearOfCollections: withRatio(callStats(calls.filter((c) => !overlapsFull(c)).map((c) => c.ms))),
    longTurns: callStats(
      inWindow(server.ticks)
        .filter((t) => t.ms > 10)
        .map((t) => t.ms),
    ),
    collections: kinds.map((kind) => {
      const of = collections.filter((c) => c.kind === kind).map((c) => c.ms);
      return {
        kind: collectionKinds[kind] ?? `kind ${kind}`,
        count: of.length,
        totalMs: of.reduce((a, b) => a + b, 0),
        maxMs: Math.max(0, ...of),
      };
    }),
    flushes:
      flushes.length === 0
        ? null
        : {
            ...callStats(flushes.map((f) => f.flushMs)),
            writesMean: mean(flushes.map((f) => f.writes)),
            commits: callStats(flushes.map((f) => f.commitMs)),
          },
    batches: names.map((name) => {
      const of = batches.filter((b) => b.name === name);
      return {
        name,
        perSecond: of.length / seconds,
        unitsMean: mean(of.map((b) => b.units)),
        statementsMean: mean(of.map((b) => b.statements)),
        waited: callStats(of.map((b) => b.waitedMs)),
        roundTrip: callStats(of.map((b) => b.roundTripMs)),
      };
    }),
  };
}

const ms = (v: number) => v.toFixed(1);
const spreadOf = (s: CallStats) =>
  `mean ${ms(s.meanMs)}, p50 ${ms(s.p50Ms)}, p95 ${ms(s.p95Ms)}, p99 ${ms(s.p99Ms)}, max ${ms(s.maxMs)} ms`;

export function formatTrace(protocol: string, t: TraceSummary): string {
  const lines = [
    `${protocol.toUpperCase()} trace`,
    `- calls: ${t.calls.count}, ${spreadOf(t.calls)}; p99 is ${t.calls.p99OverMean.toFixed(2)} times the mean`,
    `- calls that overlapped no major or incremental collection: ${t.callsClearOfCollections.count}, ` +
      `p99 ${t.callsClearOfCollections.p99OverMean.toFixed(2)} times their mean`,
    `- event loop turns over 10 ms: ${t.longTurns.count}, ${spreadOf(t.longTurns)}`,
    `- collections: ${t.collections.map((c) => `${c.kind} ${c.count} (${ms(c.totalMs)} ms in all, longest ${ms(c.maxMs)})`).join("; ") || "none reported"}`,
  ];
  if (t.flushes)
    lines.push(
      `- SQLite group commits: ${t.flushes.count}, ${t.flushes.writesMean.toFixed(1)} writes each; ` +
        `whole flush ${spreadOf(t.flushes)}; COMMIT alone ${spreadOf(t.flushes.commits)}`,
    );
  for (const b of t.batches)
    lines.push(
      `- PostgreSQL ${b.name}: ${b.perSecond.toFixed(0)} batches/s of ${b.unitsMean.toFixed(1)} units ` +
        `(${b.statementsMean.toFixed(1)} statements); waited ${spreadOf(b.waited)}; round trip ${spreadOf(b.roundTrip)}`,
    );
  return lines.join("\n");
}
