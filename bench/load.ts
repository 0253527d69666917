// The closed-loop load generator. It runs in a process of its own (started by bench/run.ts) so
// that it never shares an event loop with the server it measures. Each virtual user sends
// AddOTPSMS then RemoveOTPSMS for the users it owns, one call at a time, as fast as answers come.
import { readFileSync, writeFileSync } from "node:fs";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { createServerTransport } from "@zitadel/client/node";
import { createUserServiceClient } from "@zitadel/client/v2";
import {
  answer,
  busyCores,
  childSettings,
  cpuSecondsOf,
  machineTicks,
  postgresCpu,
  postgresSecondsBetween,
} from "./children.ts";
import { KeptAliveConnection } from "./http-client.ts";
import { type CallStats, callStats } from "./stats.ts";

export type Protocol = "rest" | "grpc";

export interface LoadSettings {
  readonly baseUrl: string;
  readonly protocol: Protocol;
  readonly token: string;
  // One user id a line; each virtual user takes every concurrency-th one, so no two share a user.
  readonly usersFile: string;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  // gRPC only: how many client transports (HTTP/2 connections) the virtual users share. One is
  // what an application that builds one client gets.
  readonly grpcClients: number;
  // The server's pid, for its CPU time over the measured window.
  readonly watchPid?: number | undefined;
  // --trace: where to write each measured call's start (wall clock, ms) and latency.
  readonly callsFile?: string | undefined;
}

export interface TracedCall {
  readonly at: number;
  readonly ms: number;
}

export interface LoadResult {
  readonly protocol: Protocol;
  readonly concurrency: number;
  readonly windowMs: number;
  readonly add: CallStats;
  readonly remove: CallStats;
  readonly all: CallStats;
  // Completed calls per second inside the window, both kinds together.
  readonly throughput: number;
  // Errors over the whole run, warm-up included: any error fails the run.
  readonly errors: number;
  readonly firstErrors: readonly string[];
  readonly responseBytes: number;
  // Cores used over the window: 1.0 is one core busy all the time.
  readonly serverCores: number | null;
  readonly loadCores: number;
  // Cores PostgreSQL's processes used (all of them on this machine, ours and any other).
  readonly postgresCores: number;
  // Cores busy with anything else on the machine (other processes, the kernel's own work): a
  // run where this is high shared the machine and is said to be noisy.
  readonly otherCores: number | null;
  readonly loadLoopDelayP99Ms: number;
  // Appends the server planned again because another write got there first (its
  // latchkey_append_conflicts_total over the run, warm-up included), filled in by the runner: each
  // one cost a caller, or the SMS worker, a further commit (docs/benchmarks.md, 14).
  readonly conflicts?: { readonly caller: number; readonly background: number } | null;
}

// vu: the virtual user calling, for callers that spread virtual users over several connections.
interface Caller {
  add(userId: string, vu: number): Promise<number>;
  remove(userId: string, vu: number): Promise<number>;
  close(): void;
}

const callTimeoutMs = 30_000;

function restCaller(s: LoadSettings): Caller {
  const base = new URL(s.baseUrl);
  // One kept-alive connection per virtual user, as a pooled client in front of the server holds.
  const connections = Array.from(
    { length: s.concurrency },
    () => new KeptAliveConnection(base.hostname, Number(base.port), callTimeoutMs),
  );
  const auth = `authorization: Bearer ${s.token}\r\n`;
  const json = `${auth}content-type: application/json\r\n`;
  const send = async (vu: number, method: string, path: string, body: string | null) => {
    const { status, body: answer } = await connections[vu]!.request(
      method,
      path,
      body === null ? auth : json,
      body,
    ).catch((err: Error) => {
      throw new Error(`${method} ${path}: ${err.message}`);
    });
    if (status !== 200)
      throw new Error(`${method} ${path}: HTTP ${status} ${answer.toString().slice(0, 300)}`);
    return answer.length;
  };
  return {
    add: (id, vu) => send(vu, "POST", `/v2/users/${encodeURIComponent(id)}/otp_sms`, "{}"),
    remove: (id, vu) => send(vu, "DELETE", `/v2/users/${encodeURIComponent(id)}/otp_sms`, null),
    close: () => {
      for (const c of connections) c.close();
    },
  };
}

function grpcCaller(s: LoadSettings): Caller {
  // The official client exactly as a ZITADEL user would build it.
  const clients = Array.from({ length: Math.max(1, s.grpcClients) }, () =>
    createUserServiceClient(createServerTransport(s.token, { baseUrl: s.baseUrl })),
  );
  return {
    async add(userId, vu) {
      await clients[vu % clients.length]!.addOTPSMS({ userId }, { timeoutMs: callTimeoutMs });
      return 0;
    },
    async remove(userId, vu) {
      await clients[vu % clients.length]!.removeOTPSMS({ userId }, { timeoutMs: callTimeoutMs });
      return 0;
    },
    close() {},
  };
}

export async function runLoad(s: LoadSettings): Promise<LoadResult> {
  const users = readFileSync(s.usersFile, "utf8").split("\n").filter(Boolean);
  if (users.length < s.concurrency)
    throw new Error(`${users.length} users cannot keep ${s.concurrency} virtual users apart`);
  const caller = s.protocol === "rest" ? restCaller(s) : grpcCaller(s);

  const latencies = { add: [] as number[], remove: [] as number[] };
  const traced: TracedCall[] = [];
  const firstErrors: string[] = [];
  let errors = 0;
  let bytes = 0;
  let answers = 0;

  const started = performance.now();
  const windowStart = started + s.warmupMs;
  const windowEnd = windowStart + s.durationMs;

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const sampleCpu = () => ({
    server: s.watchPid ? cpuSecondsOf(s.watchPid) : null,
    load: process.cpuUsage(),
    machine: machineTicks(),
    postgres: postgresCpu(),
  });
  let cpuAtStart = sampleCpu();
  let cpuAtEnd: ReturnType<typeof sampleCpu> | null = null;
  const atStart = setTimeout(() => {
    cpuAtStart = sampleCpu();
    loopDelay.enable();
  }, s.warmupMs);
  const atEnd = setTimeout(() => {
    cpuAtEnd = sampleCpu();
    loopDelay.disable();
  }, s.warmupMs + s.durationMs);

  async function timed(kind: "add" | "remove", userId: string, vu: number): Promise<boolean> {
    const t0 = performance.now();
    try {
      const size = await caller[kind](userId, vu);
      const t1 = performance.now();
      bytes += size;
      answers++;
      if (t0 >= windowStart && t1 <= windowEnd) {
        latencies[kind].push(t1 - t0);
        if (s.callsFile) traced.push({ at: performance.timeOrigin + t0, ms: t1 - t0 });
      }
      return true;
    } catch (err) {
      errors++;
      if (firstErrors.length < 5) firstErrors.push(`${kind} ${userId}: ${String(err).slice(0, 400)}`);
      return false;
    }
  }

  async function virtualUser(index: number): Promise<void> {
    const mine = users.filter((_, k) => k % s.concurrency === index);
    for (let k = 0; performance.now() < windowEnd; k++) {
      const userId = mine[k % mine.length]!;
      // The remove runs even past the deadline: a user left with OTP SMS set would make the
      // next run's first AddOTPSMS on it fail.
      if (await timed("add", userId, index)) await timed("remove", userId, index);
    }
  }

  await Promise.all(Array.from({ length: s.concurrency }, (_, i) => virtualUser(i)));
  clearTimeout(atStart);
  clearTimeout(atEnd);
  // The last calls can finish before the end-of-window timer gets its turn.
  if (cpuAtEnd === null) {
    cpuAtEnd = sampleCpu();
    loopDelay.disable();
  }
  const end = cpuAtEnd;
  caller.close();
  if (s.callsFile) writeFileSync(s.callsFile, JSON.stringify(traced));

  const windowSeconds = s.durationMs / 1000;
  const serverCpu = cpuAtStart.server !== null && end.server !== null ? end.server - cpuAtStart.server : null;
  const loadCpu = (end.load.user + end.load.system - cpuAtStart.load.user - cpuAtStart.load.system) / 1e6;
  const all = [...latencies.add, ...latencies.remove];
  const serverCores = serverCpu === null ? null : serverCpu / windowSeconds;
  const loadCores = loadCpu / windowSeconds;
  const machineCores = busyCores(cpuAtStart.machine, end.machine);
  const postgresCores = postgresSecondsBetween(cpuAtStart.postgres, end.postgres) / windowSeconds;
  return {
    protocol: s.protocol,
    concurrency: s.concurrency,
    windowMs: s.durationMs,
    add: callStats(latencies.add),
    remove: callStats(latencies.remove),
    all: callStats(all),
    throughput: all.length / windowSeconds,
    errors,
    firstErrors,
    responseBytes: answers > 0 ? bytes / answers : 0,
    serverCores,
    loadCores,
    postgresCores,
    otherCores:
      serverCores === null ? null : Math.max(0, machineCores - serverCores - loadCores - postgresCores),
    loadLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
  };
}

if (process.env.BENCH_CHILD) {
  const settings = childSettings<LoadSettings>();
  // A server that stops answering must not hold the bench forever.
  const watchdog = setTimeout(
    () => {
      process.stderr.write("load generator: the run did not finish in time\n");
      process.exit(3);
    },
    settings.warmupMs + settings.durationMs + 2 * callTimeoutMs + 10_000,
  );
  watchdog.unref();
  runLoad(settings).then(
    async (result) => {
      await answer(result);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`load generator failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
