import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";

// Every process the bench starts, so that a failure or Ctrl-C never leaves one behind holding
// a port, a database or a core the next run needs.
const live = new Set<ChildProcess>();

export function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
}

export function killStarted(): void {
  for (const c of live) c.kill("SIGKILL");
}

process.once("exit", killStarted);

export interface Child<Message> {
  readonly process: ChildProcess;
  readonly output: () => string;
  // The first message the child sends over IPC; rejects if it exits before sending one.
  readonly message: Promise<Message>;
  readonly exited: Promise<number | null>;
}

// A bench script in its own Node process (so it has an event loop and a core to itself),
// talking back over IPC. Its settings travel in BENCH_CHILD as JSON.
export function startChild<Message>(script: string, settings: unknown, cwd: string): Child<Message> {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd,
    env: { ...process.env, BENCH_CHILD: JSON.stringify(settings) },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  track(child);
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const message = new Promise<Message>((resolve, reject) => {
    child.once("message", (m) => resolve(m as Message));
    exited.then((code) => reject(new Error(`${script} exited with ${code} before answering:\n${out}`)));
  });
  // A rejection nobody awaits yet must not end the bench: the caller sees it when it awaits.
  message.catch(() => {});
  return { process: child, output: () => out, message, exited };
}

export function childSettings<T>(): T {
  const raw = process.env.BENCH_CHILD;
  if (!raw) throw new Error("BENCH_CHILD is not set: this script is started by bench/run.ts");
  return JSON.parse(raw) as T;
}

// Sends the answer and only then exits, so that the message is not lost with the channel.
export function answer(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) return reject(new Error("no IPC channel"));
    process.send(message, undefined, {}, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}

export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, "exit").then(([code]) => code as number | null);
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  try {
    return await exited;
  } finally {
    clearTimeout(timer);
  }
}

// With logging at warn the server does not print the port it chose, so the bench picks one.
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

// Peak and current resident memory of a process, in KiB, as the kernel counts them.
export function memoryOf(pid: number): { peakRssKb: number; rssKb: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return { peakRssKb: field("VmHWM"), rssKb: field("VmRSS") };
  } catch {
    return null;
  }
}

// User plus system CPU time a process has used, in seconds.
export function cpuSecondsOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses; the fields we want follow the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100;
  } catch {
    return null;
  }
}

// Jiffies the whole machine spent busy and in all, from the first line of /proc/stat.
export function machineTicks(): { busy: number; total: number } {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.reduce((a, b) => a + b, 0);
    // idle and iowait are the two fields that are not work.
    return { busy: total - (cpu[3] ?? 0) - (cpu[4] ?? 0), total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

// Cores busy between two readings, whoever used them.
export function busyCores(
  from: { busy: number; total: number },
  to: { busy: number; total: number },
): number {
  const total = to.total - from.total;
  return total > 0 ? ((to.busy - from.busy) / total) * os.cpus().length : 0;
}

// CPU seconds of every PostgreSQL process by pid, so that a run on PostgreSQL can tell the
// database's share of the machine from everybody else's.
export function postgresCpu(): Map<number, number> {
  const seen = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (!stat.includes("(postgres)")) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      seen.set(Number(entry), (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // Gone between the listing and the read.
    }
  }
  return seen;
}

export function postgresSecondsBetween(from: Map<number, number>, to: Map<number, number>): number {
  let s = 0;
  for (const [pid, cpu] of to) s += cpu - (from.get(pid) ?? 0);
  return s;
}
