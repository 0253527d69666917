import type { StoreResult } from "./ceilings.ts";
import type { DatabaseKind } from "./databases.ts";
import type { LoadResult, Protocol } from "./load.ts";
import type { ProfileSummary } from "./profile.ts";
import { median, spread } from "./stats.ts";
import type { TraceSummary } from "./trace.ts";

// Above this spread between repeated runs a result is flagged noisy in the table.
export const noisyAbove = 0.1;
// Nor is a run clean while other work on the machine took more than this many cores.
export const busyAbove = 0.25;

export interface Percentiles {
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
}

// Several runs of one load, and their medians: one run on a shared 2-core machine says little.
export interface RunSet {
  readonly runs: readonly LoadResult[];
  readonly throughput: number;
  readonly spread: number;
  readonly add: Percentiles;
  readonly remove: Percentiles;
  readonly errors: number;
  readonly serverCores: number | null;
  readonly loadCores: number;
  readonly postgresCores: number;
  readonly otherCores: number | null;
  // Server CPU per call: what sharing the machine disturbs least, so the number to compare
  // between noisy runs.
  readonly serverCpuUsPerCall: number | null;
}

export interface StoreSet {
  readonly runs: readonly StoreResult[];
  readonly transactionsPerSecond: number;
  readonly spread: number;
  readonly otherCores: number;
}

export interface Scenario {
  readonly users: number;
  readonly events: number;
  readonly preparation: string;
  readonly peakRssMb: number | null;
  readonly byProtocol: Partial<Record<Protocol, RunSet>>;
}

export interface DatabaseResult {
  readonly kind: DatabaseKind;
  skipped?: string;
  store?: StoreSet;
  small?: Scenario;
  large?: Scenario;
  readonly problems: string[];
}

export interface Target {
  readonly what: string;
  readonly measured: string;
  readonly goal: string;
  // null: not measured in this run.
  readonly met: boolean | null;
}

export interface BenchReport {
  readonly startedAt: string;
  readonly command: string;
  readonly machine: Record<string, string | number | null>;
  readonly options: Record<string, unknown>;
  readonly ceilings: { http?: RunSet; rpc?: RunSet; httpBodyBytes?: number };
  readonly databases: DatabaseResult[];
  targets: Target[];
  profiles: { protocol: Protocol; file: string; summary: ProfileSummary }[];
  traces: { protocol: Protocol; database: string; summary: TraceSummary }[];
  readonly failures: string[];
}

const med = (runs: readonly LoadResult[], pick: (r: LoadResult) => number) => median(runs.map(pick));

export function runSet(runs: readonly LoadResult[]): RunSet {
  const percentiles = (k: "add" | "remove"): Percentiles => ({
    p50Ms: med(runs, (r) => r[k].p50Ms),
    p95Ms: med(runs, (r) => r[k].p95Ms),
    p99Ms: med(runs, (r) => r[k].p99Ms),
  });
  const server = runs.map((r) => r.serverCores).filter((c): c is number => c !== null);
  const other = runs.map((r) => r.otherCores).filter((c): c is number => c !== null);
  return {
    runs,
    throughput: med(runs, (r) => r.throughput),
    spread: spread(runs.map((r) => r.throughput)),
    add: percentiles("add"),
    remove: percentiles("remove"),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    serverCores: server.length > 0 ? median(server) : null,
    loadCores: med(runs, (r) => r.loadCores),
    postgresCores: med(runs, (r) => r.postgresCores),
    otherCores: other.length > 0 ? median(other) : null,
    serverCpuUsPerCall:
      server.length === runs.length
        ? median(runs.map((r) => ((r.serverCores ?? 0) / Math.max(r.throughput, 1e-9)) * 1e6))
        : null,
  };
}

export function storeSet(runs: readonly StoreResult[]): StoreSet {
  const rates = runs.map((r) => r.transactionsPerSecond);
  return {
    runs,
    transactionsPerSecond: median(rates),
    spread: spread(rates),
    otherCores: median(runs.map((r) => r.otherCores)),
  };
}

// What a server that only answered HTTP and wrote one row per call could do: the two costs add.
export function combinedCeiling(http: number, store: number): number {
  return 1 / (1 / http + 1 / store);
}

export function ceilingFor(report: BenchReport, db: DatabaseResult, protocol: Protocol): number | null {
  if (protocol === "grpc") return report.ceilings.rpc?.throughput ?? null;
  const http = report.ceilings.http?.throughput;
  const store = db.store?.transactionsPerSecond;
  return http && store ? combinedCeiling(http, store) : null;
}

const name = (k: DatabaseKind) => (k === "sqlite" ? "SQLite" : "PostgreSQL");
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "-";
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const worstP99 = (s: RunSet) => Math.max(s.add.p99Ms, s.remove.p99Ms);

export function evaluateTargets(report: BenchReport): Target[] {
  const targets: Target[] = [];
  const byKind = (k: DatabaseKind) => report.databases.find((d) => d.kind === k && !d.skipped);
  const ratioTarget = (k: DatabaseKind, protocol: Protocol, share: number, ceiling: string) => {
    const db = byKind(k);
    const set = db?.small?.byProtocol[protocol];
    const c = db ? ceilingFor(report, db, protocol) : null;
    const goal = `>= ${pct(share)} of ${ceiling}`;
    const what = `${name(k)} ${protocol === "rest" ? "REST" : "gRPC"} throughput`;
    if (!set || !c) return targets.push({ what, measured: "not measured", goal, met: null });
    const ratio = set.throughput / c;
    targets.push({
      what,
      measured: `${fmt(set.throughput)} calls/s = ${pct(ratio)} of ${fmt(c)}`,
      goal,
      met: ratio >= share,
    });
  };
  const p99Target = (k: DatabaseKind, limitMs: number) => {
    const set = byKind(k)?.small?.byProtocol.rest;
    const what = `${name(k)} REST p99 at ${report.options.concurrency} connections`;
    const goal = `< ${limitMs} ms`;
    if (!set) return targets.push({ what, measured: "not measured", goal, met: null });
    const p99 = worstP99(set);
    // In a closed loop the mean latency is connections / throughput, so with p99 at its measured
    // multiple of the mean, the goal asks for a throughput: said beside the figure.
    const concurrency = Number(report.options.concurrency);
    const ratio = median(set.runs.map((r) => Math.max(r.add.p99Ms, r.remove.p99Ms) / r.all.meanMs));
    const needed = (concurrency * ratio * 1000) / limitMs;
    targets.push({
      what,
      measured: `${fmt(p99, 1)} ms (worse of add/remove); p99 is ${fmt(ratio, 1)} times the mean, at which < ${limitMs} ms needs ${fmt(needed)} calls/s`,
      goal,
      met: p99 < limitMs,
    });
  };
  ratioTarget("sqlite", "rest", 0.5, "C");
  p99Target("sqlite", 25);
  ratioTarget("sqlite", "grpc", 0.6, "C_rpc");
  ratioTarget("postgres", "rest", 0.5, "its own C");
  p99Target("postgres", 50);
  const growth = Number(report.options.growthUsers ?? 0) > Number(report.options.users ?? 0);
  for (const db of report.databases) {
    if (db.skipped) continue;
    const grown = (report.options.growthProtocols as Protocol[] | undefined) ?? [];
    for (const protocol of growth ? grown : []) {
      const small = db.small?.byProtocol[protocol];
      const large = db.large?.byProtocol[protocol];
      const what = `${name(db.kind)} ${protocol === "rest" ? "REST" : "gRPC"} growth ${fmt(db.small?.users ?? 0)} -> ${fmt(db.large?.users ?? 0)} users`;
      if (!small || !large) {
        targets.push({ what, measured: "not measured", goal: "throughput falls <= 20%", met: null });
        continue;
      }
      const ratio = large.throughput / small.throughput;
      targets.push({
        what,
        measured: `${fmt(small.throughput)} -> ${fmt(large.throughput)} calls/s (${ratio >= 1 ? "+" : ""}${((ratio - 1) * 100).toFixed(0)}%)`,
        goal: "throughput falls <= 20%",
        met: ratio >= 0.8,
      });
    }
    const peaks = [db.small?.peakRssMb, db.large?.peakRssMb].filter(
      (m): m is number => typeof m === "number",
    );
    targets.push({
      what: `${name(db.kind)} server peak RSS`,
      measured: peaks.length > 0 ? `${fmt(Math.max(...peaks))} MB` : "not measured",
      goal: "< 200 MB",
      met: peaks.length > 0 ? Math.max(...peaks) < 200 : null,
    });
  }
  return targets;
}

function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = header.map((h) =>
    /^(Database|Users|Protocol|Ceiling|Target|Goal|Measured|Met|Note)/.test(h) ? "---" : "---:",
  );
  return [
    `| ${header.join(" | ")} |`,
    `| ${align.join(" | ")} |`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

const triple = (p: Percentiles) => `${fmt(p.p50Ms, 1)} / ${fmt(p.p95Ms, 1)} / ${fmt(p.p99Ms, 1)}`;
const noisy = (spreadOf: number, other: number | null) =>
  `${pct(spreadOf)}${spreadOf > noisyAbove || (other ?? 0) > busyAbove ? " noisy" : ""}`;
const cores = (s: RunSet) =>
  [s.serverCores, s.postgresCores, s.loadCores, s.otherCores]
    .map((c) => (c === null ? "-" : fmt(c, 2)))
    .join(" / ");

export function formatReport(report: BenchReport): string {
  const rows: string[][] = [];
  for (const db of report.databases) {
    if (db.skipped) continue;
    for (const scenario of [db.small, db.large]) {
      if (!scenario) continue;
      for (const protocol of ["rest", "grpc"] as const) {
        const s = scenario.byProtocol[protocol];
        if (!s) continue;
        const c = ceilingFor(report, db, protocol);
        rows.push([
          name(db.kind),
          `${fmt(scenario.users)} users, ${fmt(scenario.events)} events`,
          protocol === "rest" ? "REST" : "gRPC",
          fmt(s.throughput),
          noisy(s.spread, s.otherCores),
          triple(s.add),
          triple(s.remove),
          fmt(s.errors),
          c ? `${pct(s.throughput / c)} of ${protocol === "rest" ? "C" : "C_rpc"}` : "-",
          cores(s),
          s.serverCpuUsPerCall === null ? "-" : fmt(s.serverCpuUsPerCall),
          scenario.peakRssMb === null ? "-" : fmt(scenario.peakRssMb),
        ]);
      }
    }
  }
  const ceilingRows: string[][] = [];
  const { http, rpc } = report.ceilings;
  if (http)
    ceilingRows.push([
      "C_http",
      fmt(http.throughput),
      noisy(http.spread, http.otherCores),
      `bare node:http, ${report.ceilings.httpBodyBytes ?? "?"}-byte JSON answer, REST load; ${fmt(http.serverCpuUsPerCall ?? Number.NaN)} µs server CPU a call`,
    ]);
  for (const db of report.databases) {
    if (!db.store) continue;
    const conns = db.store.runs[0]?.connections ?? 0;
    ceilingRows.push([
      `C_store ${name(db.kind)}`,
      fmt(db.store.transactionsPerSecond),
      noisy(db.store.spread, db.store.otherCores),
      `one event row per transaction, ${conns} connection${conns === 1 ? "" : "s"}`,
    ]);
    if (http)
      ceilingRows.push([
        `C ${name(db.kind)}`,
        fmt(combinedCeiling(http.throughput, db.store.transactionsPerSecond)),
        "",
        "1 / (1/C_http + 1/C_store)",
      ]);
  }
  if (rpc)
    ceilingRows.push([
      "C_rpc",
      fmt(rpc.throughput),
      noisy(rpc.spread, rpc.otherCores),
      `no-op UserService, same Connect router and listener, gRPC load; ${fmt(rpc.serverCpuUsPerCall ?? Number.NaN)} µs server CPU a call`,
    ]);

  const out = [
    `Latchkey benchmark, ${report.startedAt}`,
    `machine: ${Object.entries(report.machine)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
    `load: ${report.options.concurrency} connections, ${report.options.runs} run(s) of ${report.options.durationSeconds} s after ${report.options.warmupSeconds} s warm-up; medians shown; latencies p50 / p95 / p99 in ms; ` +
      `"noisy": runs more than ${pct(noisyAbove)} apart, or more than ${busyAbove} cores used by other work on the machine`,
    "",
    markdownTable(
      [
        "Database",
        "Users",
        "Protocol",
        "calls/s",
        "spread",
        "AddOTPSMS ms",
        "RemoveOTPSMS ms",
        "errors",
        "vs ceiling",
        "cores: server / pg / loadgen / other",
        "server CPU µs/call",
        "peak RSS MB",
      ],
      rows,
    ),
    "",
    markdownTable(["Ceiling", "calls/s", "spread", "Note"], ceilingRows),
    "",
    markdownTable(
      ["Target", "Measured", "Goal", "Met"],
      report.targets.map((t) => [
        t.what,
        t.measured,
        t.goal,
        t.met === null ? "not measured" : t.met ? "yes" : "NO",
      ]),
    ),
  ];
  for (const db of report.databases) {
    if (db.skipped) out.push("", `${name(db.kind)} SKIPPED: ${db.skipped}`);
    for (const p of db.problems) out.push("", `${name(db.kind)}: ${p}`);
    for (const s of [db.small, db.large])
      if (s) out.push(`${name(db.kind)} ${fmt(s.users)} users: ${s.preparation}`);
  }
  for (const f of report.failures) out.push("", `FAILED: ${f}`);
  return out.join("\n");
}
