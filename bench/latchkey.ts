import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, memoryOf, stopChild, track } from "./children.ts";

export interface LatchkeyProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly token: string;
  readonly output: () => string;
  readonly memory: () => { peakRssKb: number; rssKb: number } | null;
  // SIGTERM, the way an operator stops it; a --cpu-prof profile is written on that exit.
  stop(): Promise<number | null>;
}

export interface LatchkeyOptions {
  // The tree whose bin/latchkey.mjs runs: this checkout, or a patched copy to measure a change.
  readonly root: string;
  readonly databaseUrl: string;
  // Holds the admin token; kept across restarts so the second start finds the first's token.
  readonly dir: string;
  readonly cpuProfDir?: string | undefined;
  readonly env?: Readonly<Record<string, string>>;
}

// Latchkey as `npm start` runs it (`latchkey start`, from the build that buildLatchkey made), in
// its own process, configured by environment only.
export async function startLatchkey(o: LatchkeyOptions): Promise<LatchkeyProcess> {
  const port = await freePort();
  const adminPatPath = join(o.dir, "admin.pat");
  const profiling = o.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`] : [];
  const child = spawn(process.execPath, [...profiling, "bin/latchkey.mjs", "start"], {
    cwd: o.root,
    env: {
      ...process.env,
      ...o.env,
      LATCHKEY_PORT: String(port),
      LATCHKEY_HOST: "127.0.0.1",
      LATCHKEY_DATABASE_URL: o.databaseUrl,
      LATCHKEY_ADMIN_PAT_PATH: adminPatPath,
      // Nothing is logged per request at info either, but warn keeps a surprise from skewing it.
      LATCHKEY_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child);
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = once(child, "exit");
  let gone = false;
  exited.then(() => {
    gone = true;
  });
  // At warn the start line is not printed; readiness is what /debug/ready says.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (gone) throw new Error(`Latchkey exited before it was ready:\n${out.trim()}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`Latchkey was not ready within 30 s:\n${out.trim()}`);
    }
    const ready = await fetch(`${url}/debug/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // Said by bin/latchkey.mjs when the build is missing or older than the sources: the numbers
  // would then include tsx's loader.
  const fromSources = /^latchkey: .*running the sources through tsx/m.exec(out);
  if (fromSources) process.stderr.write(`NOTE: the server did not run its build: ${fromSources[0]}\n`);
  const token = readFileSync(adminPatPath, "utf8").trim();
  const pid = child.pid!;
  return {
    child,
    pid,
    url,
    token,
    output: () => out,
    memory: () => memoryOf(pid),
    stop: () => stopChild(child),
  };
}

// `npm run build` in the tree under test, as `npm start` does before it starts; an older tree
// whose build makes only the console then runs its sources, as its `npm start` did.
export function buildLatchkey(root: string): void {
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
}
