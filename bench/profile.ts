// Reads a V8 .cpuprofile (node --cpu-prof) and tells where the time went: the functions with the
// most self time, the same grouped by package or module, and the Latchkey functions with the most
// time including what they call. `tsx bench/profile.ts FILE.cpuprofile [--top=N] [--from=S] [--to=S]`.
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { originalPosition } from "./source-map.ts";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
    readonly columnNumber: number;
  };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface Row {
  readonly name: string;
  readonly ms: number;
  // Share of the busy time: idle excluded, so that a half-idle profile does not halve every share.
  readonly share: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly wallMs: number;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly selfTop: readonly Row[];
  readonly groups: readonly Row[];
  readonly latchkeyInclusive: readonly Row[];
}

const special = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

function where(url: string): string {
  if (url === "") return "";
  if (url.startsWith("node:")) return url;
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf("/node_modules/");
  if (nm >= 0) return path.slice(nm + "/node_modules/".length);
  const src = path.lastIndexOf("/src/");
  if (src >= 0) return path.slice(src + 1);
  const bench = path.lastIndexOf("/bench/");
  return bench >= 0 ? path.slice(bench + 1) : path;
}

function functionKey(n: ProfileNode): string {
  const f = n.callFrame;
  const name = f.functionName || "(anonymous)";
  if (special.has(name)) return name;
  const at = where(f.url);
  if (at === "") return `${name} [native]`;
  // Latchkey's own functions are told apart by name and file (a profile of the sources under tsx
  // had transformed code, whose line numbers pointed nowhere useful).
  return at.startsWith("src/") || at.startsWith("bench/")
    ? `${name} ${at}`
    : `${name} ${at}:${f.lineNumber + 1}`;
}

// The package (node_modules), Node module (node:...), or Latchkey folder a frame belongs to.
function groupOf(n: ProfileNode): string {
  const f = n.callFrame;
  if (special.has(f.functionName)) return f.functionName;
  const at = where(f.url);
  if (at === "") return "native code (V8 builtins, addons, syscalls)";
  if (at.startsWith("node:"))
    return at
      .replace(/^node:internal\//, "node:")
      .split("/")
      .slice(0, 2)
      .join("/");
  if (at.startsWith("src/") || at.startsWith("bench/")) return at.split("/").slice(0, 2).join("/");
  const parts = at.split("/");
  return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? at);
}

// window: seconds from the profile's start, to look at part of a run (the start-up, or the last
// minute of a long one) on its own.
export function summarize(file: string, top = 25, window?: { from: number; to: number }): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  // Frames in the compiled server are named by the source file they were compiled from.
  for (const n of p.nodes) {
    const f = n.callFrame;
    const original = originalPosition(f.url, f.lineNumber, f.columnNumber);
    if (original)
      (n as { callFrame: ProfileNode["callFrame"] }).callFrame = {
        ...f,
        url: pathToFileURL(original.file).href,
        lineNumber: original.line,
      };
  }
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<string, number>();
  const groups = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

  let clock = 0;
  p.samples.forEach((id, i) => {
    // A sample stands for the interval before it; at a ~1 ms interval the choice of side hardly matters.
    const us = p.timeDeltas[i] ?? 0;
    clock += us;
    if (window && (clock < window.from * 1e6 || clock > window.to * 1e6)) return;
    const node = byId.get(id);
    if (!node) return;
    totalUs += us;
    if (node.callFrame.functionName === "(idle)") {
      idleUs += us;
      return;
    }
    add(self, functionKey(node), us);
    add(groups, groupOf(node), us);
    // Each Latchkey function on the stack once, however deep it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at);
      if (!n || !/\/src\//.test(n.callFrame.url)) continue;
      const key = functionKey(n);
      if (seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, us);
    }
  });

  const busyUs = totalUs - idleUs;
  const rows = (m: Map<string, number>, n: number): Row[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return {
    file,
    wallMs: (p.endTime - p.startTime) / 1000,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    selfTop: rows(self, top),
    groups: rows(groups, top),
    latchkeyInclusive: rows(inclusive, top),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

function table(title: string, rows: readonly Row[]): string {
  const lines = [`| ${title} | ms | share of busy |`, "| --- | ---: | ---: |"];
  for (const r of rows) lines.push(`| \`${r.name}\` | ${r.ms.toFixed(0)} | ${pct(r.share)} |`);
  return lines.join("\n");
}

export function formatSummary(s: ProfileSummary): string {
  return [
    `Profile ${s.file}: ${(s.wallMs / 1000).toFixed(1)} s of wall time, ${(s.busyMs / 1000).toFixed(1)} s busy, ${(s.idleMs / 1000).toFixed(1)} s idle.`,
    "",
    table("self time: function", s.selfTop),
    "",
    table("self time: package or module", s.groups),
    "",
    table("Latchkey functions, time including callees", s.latchkeyInclusive),
  ].join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const files = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const from = flag("from");
  const to = flag("to");
  const window =
    from || to ? { from: Number(from ?? 0), to: Number(to ?? Number.POSITIVE_INFINITY) } : undefined;
  if (files.length === 0) {
    process.stderr.write("usage: tsx bench/profile.ts FILE.cpuprofile [--top=N] [--from=S] [--to=S]\n");
    process.exit(2);
  }
  for (const f of files)
    process.stdout.write(`${formatSummary(summarize(f, Number(flag("top") ?? 25), window))}\n\n`);
}
