// `npm run bench [-- flags]`: Latchkey under a closed loop of AddOTPSMS + RemoveOTPSMS pairs, on
// SQLite and PostgreSQL, over REST and gRPC, next to the ceilings of this machine. Every flag
// has an environment twin (BENCH_DURATION for --duration, ...); `--help` lists them.
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import pg from "pg";
import type { ServerReady, StoreResult } from "./ceilings.ts";
import { busyCores, killStarted, machineTicks, startChild, stopChild } from "./children.ts";
import { type BenchDatabase, type DatabaseKind, freshDatabase, postgresProblem } from "./databases.ts";
import { buildLatchkey, type LatchkeyProcess, startLatchkey } from "./latchkey.ts";
import type { LoadResult, LoadSettings, Protocol, TracedCall } from "./load.ts";
import { createUsers, probePair } from "./prepare.ts";
import { formatSummary, summarize } from "./profile.ts";
import {
  type BenchReport,
  busyAbove,
  type DatabaseResult,
  evaluateTargets,
  formatReport,
  type RunSet,
  runSet,
  type Scenario,
  storeSet,
} from "./report.ts";
import { formatTrace, type ServerTrace, summarizeTrace } from "./trace.ts";

const benchRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface Options {
  readonly quick: boolean;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  readonly runs: number;
  readonly users: number;
  readonly growthUsers: number;
  readonly minEvents: number;
  readonly databases: readonly DatabaseKind[];
  readonly protocols: readonly Protocol[];
  readonly growthProtocols: readonly Protocol[];
  readonly grpcClients: number;
  readonly ceilings: boolean;
  readonly cpuProf: boolean;
  readonly cpuProfDb: DatabaseKind;
  readonly trace: boolean;
  readonly prepTimeoutSeconds: number;
  readonly quietWaitSeconds: number;
  readonly postgresUrl: string;
  readonly serverRoot: string;
  readonly serverEnv: Readonly<Record<string, string>>;
  readonly out: string;
}

const help = `npm run bench -- [flags]            (each flag also as BENCH_<NAME>, e.g. BENCH_DURATION=20)
  --quick                 a short smoke run: 3 s runs, 1 run each, 200 -> 2,000 users
  --duration=S            measured seconds per run (8; quick 3)
  --warmup=S              unmeasured seconds before each run (2; quick 1)
  --concurrency=N         virtual users, each one connection or stream (64)
  --runs=N                runs per measurement; medians are reported (3; quick 1)
  --users=N               users for the main measurement (1000; quick 200)
  --growth-users=N        users for the growth measurement, 0 for none (100000; quick 2000)
  --min-events=N          events the growth database holds at least (1000000; quick 20000)
  --db=sqlite,postgres    databases, in order (both)
  --protocols=rest,grpc   protocols (both)
  --growth-protocols=P    protocols measured again on the grown database (rest: the store's
                          growth is what is measured, and it keeps a full run near 10 minutes)
  --grpc-clients=N        official gRPC clients (one HTTP/2 connection each) shared by the
                          virtual users (1, as an application building one client has)
  --no-ceilings           skip C_http, C_store and C_rpc
  --cpu-prof              also profile the server under REST and gRPC load (SQLite)
  --cpu-prof-db=DB        the database the profiled (or traced) server runs on: sqlite or postgres (sqlite)
  --trace                 also trace the server under each protocol's load: its event loop's
                          turns, V8's collections, SQLite's group commits, PostgreSQL's batches,
                          laid beside each call's latency (docs/benchmarks.md, 12)
  --prep-timeout=S        time box for creating users (300; quick 60)
  --quiet-wait=S          before each run, wait up to S seconds for other work on the machine
                          to drop under ${busyAbove} cores (30; quick 0)
  --postgres-url=URL      admin URL (postgres://postgres@127.0.0.1:5432/postgres)
  --server-env=K=V,...     extra settings for the server under test, e.g.
                          LATCHKEY_SMS_REMOVAL_NOTICE=false (LATCHKEY_WRITES_PER_MINUTE=0 is set:
                          the bench's one admin token stands for many callers)
  --server-root=DIR       the tree whose server is built and measured (this checkout)
  --out=DIR               where the JSON report goes (bench/results)`;

function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}\n${help}`);
    const eq = a.indexOf("=");
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (
      argv[i + 1] !== undefined &&
      !argv[i + 1]!.startsWith("--") &&
      !/^(quick|cpu-prof|trace|no-|help)/.test(a.slice(2))
    )
      flags.set(a.slice(2), argv[++i]!);
    else flags.set(a.slice(2), "1");
  }
  if (flags.has("help")) {
    process.stdout.write(`${help}\n`);
    process.exit(0);
  }
  const get = (n: string) => flags.get(n) ?? env[`BENCH_${n.toUpperCase().replaceAll("-", "_")}`];
  const on = (n: string) => ["1", "true", "yes"].includes(get(n) ?? "");
  const quick = on("quick");
  const num = (n: string, full: number, short: number) => {
    const raw = get(n);
    const v = raw === undefined ? (quick ? short : full) : Number(raw);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${n}: "${raw}" is not a number`);
    return v;
  };
  const list = <T extends string>(n: string, all: readonly T[]): T[] => {
    const raw = get(n);
    if (!raw) return [...all];
    const picked = raw.split(",").map((s) => s.trim()) as T[];
    for (const p of picked)
      if (!all.includes(p)) throw new Error(`--${n}: ${p} is not one of ${all.join(", ")}`);
    return picked;
  };
  const o: Options = {
    quick,
    durationSeconds: num("duration", 8, 3),
    warmupSeconds: num("warmup", 2, 1),
    concurrency: num("concurrency", 64, 64),
    runs: Math.max(1, num("runs", 3, 1)),
    users: num("users", 1000, 200),
    growthUsers: num("growth-users", 100_000, 2000),
    minEvents: num("min-events", 1_000_000, 20_000),
    databases: list("db", ["sqlite", "postgres"] as const),
    protocols: list("protocols", ["rest", "grpc"] as const),
    growthProtocols: get("growth-protocols")
      ? list("growth-protocols", ["rest", "grpc"] as const)
      : list("protocols", ["rest", "grpc"] as const).filter((p) => p === "rest"),
    grpcClients: Math.max(1, num("grpc-clients", 1, 1)),
    ceilings: !on("no-ceilings"),
    cpuProf: on("cpu-prof"),
    trace: on("trace"),
    cpuProfDb: list("cpu-prof-db", ["sqlite", "postgres"] as const)[0] ?? "sqlite",
    prepTimeoutSeconds: num("prep-timeout", 300, 60),
    quietWaitSeconds: num("quiet-wait", 30, 0),
    postgresUrl: get("postgres-url") ?? "postgres://postgres@127.0.0.1:5432/postgres",
    serverRoot: resolve(get("server-root") ?? benchRoot),
    serverEnv: {
      // One admin token stands for many clients here: the per-caller write limit would measure
      // itself, not the server.
      LATCHKEY_WRITES_PER_MINUTE: "0",
      ...Object.fromEntries(
        (get("server-env") ?? "")
          .split(",")
          .filter((kv) => kv.includes("="))
          .map((kv) => [kv.slice(0, kv.indexOf("=")).trim(), kv.slice(kv.indexOf("=") + 1)]),
      ),
    },
    out: resolve(get("out") ?? join(benchRoot, "bench", "results")),
  };
  if (o.users < o.concurrency)
    throw new Error(
      `--users=${o.users} is fewer than --concurrency=${o.concurrency}: virtual users would collide`,
    );
  return o;
}

const log = (line: string) => process.stdout.write(`${line}\n`);

// Databases not yet dropped, for Ctrl-C: a PostgreSQL database would otherwise stay behind.
const undropped = new Set<BenchDatabase>();

async function fresh(kind: DatabaseKind, dir: string, o: Options): Promise<BenchDatabase> {
  const db = await freshDatabase(kind, dir, o.postgresUrl);
  undropped.add(db);
  return {
    ...db,
    async drop() {
      undropped.delete(db);
      await db.drop();
    },
  };
}
const fmt = (n: number) => Math.round(n).toLocaleString("en");

async function machine(o: Options): Promise<Record<string, string | number | null>> {
  const mem = new Database(":memory:");
  const sqlite = (mem.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v;
  mem.close();
  let postgres: string | null = null;
  if (o.databases.includes("postgres") && (await postgresProblem(o.postgresUrl)) === null) {
    const c = new pg.Client({ connectionString: o.postgresUrl });
    await c.connect();
    postgres = (await c.query("SHOW server_version")).rows[0].server_version;
    await c.end();
  }
  // The tree under test moves fast: a result names the commit, and says when src/ differed from it.
  const git = (...args: string[]) => {
    try {
      return execFileSync("git", ["-C", o.serverRoot, ...args], { encoding: "utf8" }).trim();
    } catch {
      return null;
    }
  };
  const commit = git("rev-parse", "--short", "HEAD");
  const dirty = git("status", "--porcelain", "--", "src");
  return {
    latchkey: commit ? `${commit}${dirty ? " with uncommitted changes in src/" : ""}` : o.serverRoot,
    cpu: `${os.cpus().length} x ${os.cpus()[0]?.model.trim() ?? "?"}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    sqlite,
    postgres,
  };
}

// Other sessions may share this machine: a run started while they hold a core measures them as
// much as Latchkey. Waits (bounded) for the machine to go quiet; the run records what it shared.
async function quiet(o: Options): Promise<void> {
  const deadline = Date.now() + o.quietWaitSeconds * 1000;
  let told = false;
  for (;;) {
    const from = machineTicks();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = busyCores(from, machineTicks());
    if (busy < busyAbove) return;
    if (Date.now() >= deadline) {
      if (o.quietWaitSeconds > 0)
        log(`  the machine stayed busy (${busy.toFixed(2)} cores): measuring anyway`);
      return;
    }
    if (!told)
      log(
        `  waiting for the machine to go quiet (${busy.toFixed(2)} cores busy, the server's own background work included)`,
      );
    told = true;
  }
}

// One measured run in a fresh load-generator process.
async function load(
  o: Options,
  s: Omit<LoadSettings, "concurrency" | "warmupMs" | "durationMs" | "grpcClients">,
) {
  const settings: LoadSettings = {
    ...s,
    grpcClients: o.grpcClients,
    concurrency: o.concurrency,
    warmupMs: o.warmupSeconds * 1000,
    durationMs: o.durationSeconds * 1000,
  };
  await quiet(o);
  const before = await conflictsOf(s.baseUrl);
  const child = startChild<LoadResult>("bench/load.ts", settings, benchRoot);
  const result = await child.message;
  await child.exited;
  const after = await conflictsOf(s.baseUrl);
  const conflicts =
    before && after
      ? { caller: after.caller - before.caller, background: after.background - before.background }
      : null;
  return { ...result, conflicts };
}

// The server's counts of lost append races, from its /metrics (null where there are none: the
// ceilings' servers).
async function conflictsOf(baseUrl: string): Promise<{ caller: number; background: number } | null> {
  const text = await fetch(`${baseUrl}/metrics`).then(
    (r) => (r.ok ? r.text() : ""),
    () => "",
  );
  const count = (by: string) =>
    new RegExp(`^latchkey_append_conflicts_total\\{by="${by}"\\} (\\d+)$`, "m").exec(text)?.[1];
  const caller = count("caller");
  const background = count("background");
  return caller === undefined || background === undefined
    ? null
    : { caller: Number(caller), background: Number(background) };
}

function describe(r: LoadResult): string {
  return (
    `${fmt(r.throughput)} calls/s, add p99 ${r.add.p99Ms.toFixed(1)} ms, remove p99 ${r.remove.p99Ms.toFixed(1)} ms, ` +
    `${r.errors} errors${r.conflicts ? `, lost races ${r.conflicts.caller} by callers and ${r.conflicts.background} by the SMS worker` : ""}; cores: server ${r.serverCores?.toFixed(2) ?? "?"}, postgres ${r.postgresCores.toFixed(2)}, ` +
    `loadgen ${r.loadCores.toFixed(2)}, other ${r.otherCores?.toFixed(2) ?? "?"}`
  );
}

// Protocols alternate run by run, so that a noisy minute hurts both alike rather than one.
async function measure(
  o: Options,
  protocols: readonly Protocol[],
  label: string,
  target: { url: string; token: string; usersFile: string; pid?: number },
  failures: string[],
): Promise<Partial<Record<Protocol, RunSet>>> {
  const runs = new Map<Protocol, LoadResult[]>(protocols.map((p) => [p, []]));
  for (let i = 0; i < o.runs; i++) {
    for (const protocol of protocols) {
      const r = await load(o, {
        baseUrl: target.url,
        protocol,
        token: target.token,
        usersFile: target.usersFile,
        watchPid: target.pid,
      });
      log(`  ${label} ${protocol} run ${i + 1}/${o.runs}: ${describe(r)}`);
      if (r.errors > 0) {
        failures.push(`${label} ${protocol}: ${r.errors} errors, first: ${r.firstErrors.join(" | ")}`);
        log(`    errors: ${r.firstErrors.join("\n    ")}`);
      }
      runs.get(protocol)!.push(r);
    }
  }
  return Object.fromEntries([...runs].map(([p, rs]) => [p, runSet(rs)]));
}

const peakMb = (s: LatchkeyProcess) => {
  const m = s.memory();
  return m ? m.peakRssKb / 1024 : null;
};

async function benchDatabase(
  o: Options,
  kind: DatabaseKind,
  work: string,
  report: BenchReport,
): Promise<DatabaseResult> {
  const result: DatabaseResult = { kind, problems: [] };
  if (kind === "postgres") {
    const problem = await postgresProblem(o.postgresUrl);
    if (problem) {
      result.skipped = `PostgreSQL at ${o.postgresUrl} is unreachable (${problem}); continuing without it`;
      log(`PostgreSQL SKIPPED: ${result.skipped}`);
      return result;
    }
  }
  log(`\n== ${kind} ==`);
  const dir = join(work, kind);
  const db = await fresh(kind, join(dir, "db"), o);
  const serverDir = join(dir, "server");
  mkdirSync(serverDir, { recursive: true });
  const usersFile = join(dir, "users.txt");
  writeFileSync(usersFile, "");
  let server: LatchkeyProcess | null = null;
  try {
    try {
      server = await startLatchkey({
        root: o.serverRoot,
        env: o.serverEnv,
        databaseUrl: db.url,
        dir: serverDir,
      });
    } catch (err) {
      // The PostgreSQL adapter is still being built: a start failure there is reported, not fatal.
      if (kind !== "postgres") throw err;
      result.skipped = `Latchkey did not start on PostgreSQL: ${err instanceof Error ? err.message : String(err)}`;
      log(`PostgreSQL SKIPPED: ${result.skipped}`);
      return result;
    }
    log(`creating ${fmt(o.users)} users through AddHumanUser`);
    const first = await createUsers({
      baseUrl: server.url,
      token: server.token,
      from: 0,
      to: o.users,
      usersFile,
      concurrency: 32,
      timeBoxSeconds: o.prepTimeoutSeconds,
      log,
    });
    if (!first.complete) throw new Error(`only ${first.created} of ${o.users} users were created in time`);
    const firstUser = readFileSync(usersFile, "utf8").split("\n")[0]!;
    const probe = await probePair(server.url, server.token, firstUser);
    report.ceilings.httpBodyBytes ??= probe.bodyBytes;
    const small: Scenario = {
      users: o.users,
      events: await db.countEvents(),
      preparation: `${fmt(first.created)} users through the API in ${first.seconds.toFixed(0)} s`,
      peakRssMb: null,
      byProtocol: await measure(
        o,
        o.protocols,
        `${kind} ${fmt(o.users)} users`,
        { url: server.url, token: server.token, usersFile, pid: server.pid },
        report.failures,
      ),
    };
    result.small = { ...small, peakRssMb: peakMb(server) };

    if (o.growthUsers > o.users) {
      log(`growing to ${fmt(o.growthUsers)} users through AddHumanUser (time box ${o.prepTimeoutSeconds} s)`);
      const more = await createUsers({
        baseUrl: server.url,
        token: server.token,
        from: o.users,
        to: o.growthUsers,
        usersFile,
        concurrency: 32,
        timeBoxSeconds: o.prepTimeoutSeconds,
        log,
      });
      const prepPeak = peakMb(server);
      await server.stop();
      server = null;
      const users = o.users + more.created;
      let notes = `${fmt(users)} users (${fmt(more.created)} more through the API in ${more.seconds.toFixed(0)} s${more.complete ? "" : ", TIME BOX HIT"}${more.collisions > 0 ? `, ${more.collisions} "User already exists" for a fresh username` : ""}); server peak RSS while creating them ${prepPeak?.toFixed(0) ?? "?"} MB`;
      if (!more.complete) result.problems.push(`user creation hit its time box at ${fmt(users)} users`);
      const before = await db.countEvents();
      const pairs = Math.max(0, Math.ceil((o.minEvents - before) / (2 * users)));
      let sample: { sampleUserId: string; sampleUserSequence: number } | null = null;
      if (pairs > 0) {
        log(`writing ${pairs} AddOTPSMS/RemoveOTPSMS pair(s) of history per user into the stopped database`);
        const t0 = performance.now();
        sample = await db.fillHistory(pairs);
        notes += `; ${fmt(before)} -> ${fmt(await db.countEvents())} events by writing ${pairs} pair(s) per user directly in ${((performance.now() - t0) / 1000).toFixed(0)} s`;
      }
      // A fresh process, so that its peak RSS is the load's and not the preparation's.
      server = await startLatchkey({
        root: o.serverRoot,
        env: o.serverEnv,
        databaseUrl: db.url,
        dir: serverDir,
      });
      if (sample) {
        const after = await probePair(server.url, server.token, sample.sampleUserId);
        if (after.sequence !== sample.sampleUserSequence + 2)
          throw new Error(
            `history fill left user ${sample.sampleUserId} at sequence ${after.sequence - 2}, expected ${sample.sampleUserSequence}`,
          );
      }
      const events = await db.countEvents();
      log(`${fmt(users)} users, ${fmt(events)} events`);
      const byProtocol = await measure(
        o,
        o.growthProtocols,
        `${kind} ${fmt(users)} users`,
        { url: server.url, token: server.token, usersFile, pid: server.pid },
        report.failures,
      );
      result.large = { users, events, preparation: notes, peakRssMb: peakMb(server), byProtocol };
    }
  } catch (err) {
    // What was measured before the failure stays in the report.
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    result.problems.push(`run aborted: ${message}`);
    report.failures.push(`${kind}: ${message}`);
    log(`${kind} FAILED: ${message}`);
  } finally {
    if (server) await server.stop();
    await db.drop();
  }
  if (o.ceilings) {
    try {
      result.store = await storeCeiling(o, kind, join(work, `${kind}-store`));
    } catch (err) {
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      report.failures.push(`C_store ${kind}: ${message}`);
      log(`C_store ${kind} FAILED: ${message}`);
    }
  }
  return result;
}

// C_store on a database of its own, its schema made by Latchkey itself so that the table and
// its indexes are exactly those the server writes to.
async function storeCeiling(o: Options, kind: DatabaseKind, dir: string) {
  log(`C_store ${kind}`);
  const db: BenchDatabase = await fresh(kind, join(dir, "db"), o);
  try {
    mkdirSync(join(dir, "server"), { recursive: true });
    const s = await startLatchkey({
      root: o.serverRoot,
      env: o.serverEnv,
      databaseUrl: db.url,
      dir: join(dir, "server"),
    });
    await s.stop();
    const runs: StoreResult[] = [];
    for (let i = 0; i < o.runs; i++) {
      await quiet(o);
      const child = startChild<StoreResult>(
        "bench/ceilings.ts",
        {
          mode: "store",
          database: db.target,
          concurrency: o.concurrency,
          warmupMs: o.warmupSeconds * 1000,
          durationMs: o.durationSeconds * 1000,
        },
        benchRoot,
      );
      const r = await child.message;
      await child.exited;
      log(
        `  C_store ${kind} run ${i + 1}/${o.runs}: ${fmt(r.transactionsPerSecond)} transactions/s; cores: postgres ${r.postgresCores.toFixed(2)}, other ${r.otherCores.toFixed(2)}`,
      );
      runs.push(r);
    }
    return storeSet(runs);
  } finally {
    await db.drop();
  }
}

// C_http or C_rpc: a ceiling server in its own process, driven by the same load generator.
async function serverCeiling(
  o: Options,
  mode: "http" | "rpc",
  bodyBytes: number,
  work: string,
  failures: string[],
) {
  const protocol: Protocol = mode === "http" ? "rest" : "grpc";
  const usersFile = join(work, "fake-users.txt");
  // The ceiling servers ignore the id; distinct ones keep the paths the same length as real ones.
  writeFileSync(
    usersFile,
    Array.from({ length: o.concurrency * 16 }, (_, i) => String(914152461099598245n + BigInt(i))).join("\n"),
  );
  const child = startChild<ServerReady>(
    "bench/ceilings.ts",
    mode === "http" ? { mode, bodyBytes } : { mode },
    benchRoot,
  );
  try {
    const { port } = await child.message;
    const runs: LoadResult[] = [];
    for (let i = 0; i < o.runs; i++) {
      const r = await load(o, {
        baseUrl: `http://127.0.0.1:${port}`,
        protocol,
        token: "ceiling",
        usersFile,
        watchPid: child.process.pid,
      });
      log(`  C_${mode} run ${i + 1}/${o.runs}: ${describe(r)}`);
      if (r.errors > 0) failures.push(`C_${mode}: ${r.errors} errors, first: ${r.firstErrors.join(" | ")}`);
      runs.push(r);
    }
    return runSet(runs);
  } finally {
    await stopChild(child.process);
  }
}

// One load against a server started with something watching it (--cpu-prof, --trace), on SQLite
// (or --cpu-prof-db) with the main measurement's users. Users are made before the watched
// process starts, so that what it records is the load alone (and the start-up, small beside it).
async function watchedRun(
  o: Options,
  protocol: Protocol,
  dir: string,
  watch: { cpuProfDir?: string; env?: Record<string, string>; callsFile?: string },
): Promise<LoadResult> {
  const db = await fresh(o.cpuProfDb, join(dir, "db"), o);
  const serverDir = join(dir, "server");
  mkdirSync(serverDir, { recursive: true });
  const usersFile = join(dir, "users.txt");
  writeFileSync(usersFile, "");
  try {
    const prep = await startLatchkey({
      root: o.serverRoot,
      env: o.serverEnv,
      databaseUrl: db.url,
      dir: serverDir,
    });
    try {
      await createUsers({
        baseUrl: prep.url,
        token: prep.token,
        from: 0,
        to: o.users,
        usersFile,
        concurrency: 32,
        timeBoxSeconds: o.prepTimeoutSeconds,
        log,
      });
    } finally {
      await prep.stop();
    }
    const server = await startLatchkey({
      root: o.serverRoot,
      env: { ...o.serverEnv, ...watch.env },
      databaseUrl: db.url,
      dir: serverDir,
      cpuProfDir: watch.cpuProfDir,
    });
    try {
      return await load(o, {
        baseUrl: server.url,
        protocol,
        token: server.token,
        usersFile,
        watchPid: server.pid,
        callsFile: watch.callsFile,
      });
    } finally {
      await server.stop();
    }
  } finally {
    await db.drop();
  }
}

async function profile(o: Options, protocol: Protocol, work: string, stamp: string) {
  const dir = join(work, `profile-${protocol}`);
  const profDir = join(dir, "cpuprof");
  const r = await watchedRun(o, protocol, dir, { cpuProfDir: profDir });
  log(`  profiled ${protocol}: ${describe(r)}`);
  // Every thread with a V8 isolate writes one: the main thread's is the largest.
  const file = readdirSync(profDir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .sort((a, b) => statSync(join(profDir, b)).size - statSync(join(profDir, a)).size)[0];
  if (!file) throw new Error(`no .cpuprofile was written in ${profDir}`);
  const kept = join(o.out, `${stamp}-${protocol}.cpuprofile`);
  renameSync(join(profDir, file), kept);
  return { protocol, file: kept, summary: summarize(kept, 25) };
}

async function trace(o: Options, protocol: Protocol, work: string) {
  const dir = join(work, `trace-${protocol}`);
  mkdirSync(dir, { recursive: true });
  const serverFile = join(dir, "server.json");
  const callsFile = join(dir, "calls.json");
  const preload = join(benchRoot, "bench", "trace-server.mjs");
  const r = await watchedRun(o, protocol, dir, {
    env: {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import=${pathToFileURL(preload).href}`.trim(),
      BENCH_TRACE_FILE: serverFile,
    },
    callsFile,
  });
  log(`  traced ${protocol}: ${describe(r)}`);
  const summary = summarizeTrace(
    JSON.parse(readFileSync(serverFile, "utf8")) as ServerTrace,
    JSON.parse(readFileSync(callsFile, "utf8")) as TracedCall[],
  );
  return { protocol, database: o.cpuProfDb, summary };
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2), process.env);
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[:.]/g, "-");
  mkdirSync(o.out, { recursive: true });
  const work = mkdtempSync(join(os.tmpdir(), "latchkey-bench-"));
  const report: BenchReport = {
    startedAt,
    command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
    machine: await machine(o),
    options: { ...o },
    ceilings: {},
    databases: [],
    targets: [],
    profiles: [],
    traces: [],
    failures: [],
  };
  log(`Latchkey bench: ${JSON.stringify(report.machine)}`);
  log(
    `${o.quick ? "QUICK " : ""}${o.runs} run(s) x (${o.warmupSeconds} s warm-up + ${o.durationSeconds} s) at ${o.concurrency} connections; ` +
      `${fmt(o.users)} users, growth to ${fmt(o.growthUsers)} users / ${fmt(o.minEvents)} events; server from ${o.serverRoot}`,
  );
  buildLatchkey(o.serverRoot);
  try {
    for (const kind of o.databases) {
      try {
        report.databases.push(await benchDatabase(o, kind, work, report));
      } catch (err) {
        const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
        report.failures.push(`${kind}: ${message}`);
        report.databases.push({ kind, problems: [`run aborted: ${message}`] });
        log(`${kind} FAILED: ${message}`);
      }
    }
    // A phase that fails is reported with the rest, never at the cost of what was measured before it.
    const phase = async (name: string, work: () => Promise<void>) => {
      try {
        await work();
      } catch (err) {
        const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
        report.failures.push(`${name}: ${message}`);
        log(`${name} FAILED: ${message}`);
      }
    };
    if (o.ceilings) {
      log("\n== ceilings ==");
      const bodyBytes = report.ceilings.httpBodyBytes ?? 147;
      report.ceilings.httpBodyBytes = bodyBytes;
      if (o.protocols.includes("rest"))
        await phase("C_http", async () => {
          report.ceilings.http = await serverCeiling(o, "http", bodyBytes, work, report.failures);
        });
      if (o.protocols.includes("grpc"))
        await phase("C_rpc", async () => {
          report.ceilings.rpc = await serverCeiling(o, "rpc", bodyBytes, work, report.failures);
        });
    }
    if (o.trace) {
      log("\n== traces ==");
      for (const protocol of o.protocols)
        await phase(`trace ${protocol}`, async () => {
          report.traces.push(await trace(o, protocol, work));
        });
    }
    if (o.cpuProf) {
      log("\n== profiles ==");
      for (const protocol of o.protocols)
        await phase(`profile ${protocol}`, async () => {
          report.profiles.push(await profile(o, protocol, work, stamp));
        });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  report.targets = evaluateTargets(report);
  const jsonPath = join(o.out, `${stamp}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  log(`\n${formatReport(report)}`);
  for (const t of report.traces) log(`\n${formatTrace(t.protocol, t.summary)}`);
  for (const p of report.profiles) log(`\n${p.protocol.toUpperCase()} ${formatSummary(p.summary)}`);
  log(`\nreport written to ${jsonPath}`);
  if (report.failures.length > 0) process.exit(1);
}

process.once("SIGINT", () => {
  // The server processes go first (children.ts), so that nothing holds the databases open.
  killStarted();
  Promise.allSettled([...undropped].map((d) => d.drop())).then(() => process.exit(130));
});

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
