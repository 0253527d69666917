import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  exited(): Promise<number | null>;
}

// Latchkey as `npm start` runs it (`latchkey start`): a separate process, configured by
// environment only.
const live = new Set<ChildProcess>();

// For an after() hook: a failed assertion must not leave a server running and the test
// runner waiting on it.
export function killAll(): void {
  for (const c of live) c.kill("SIGKILL");
}

export const latchkeyBin = join(process.cwd(), "bin", "latchkey.mjs");

// The JSON log lines a process wrote, parsed; other output is left out.
export function logLines(output: string): Record<string, unknown>[] {
  return output.split("\n").flatMap((line) => {
    if (!line.startsWith("{")) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

export async function spawnLatchkey(
  env: Record<string, string>,
  cwd?: string,
  args: string[] = [],
): Promise<ServerProcess> {
  const child = spawn(process.execPath, [latchkeyBin, "start", ...args], {
    cwd: cwd ?? process.cwd(),
    env: { ...process.env, LATCHKEY_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  child.once("exit", () => live.delete(child));
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const exit = once(child, "exit").then(([code]) => code as number | null);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start within 20s:\n${out}`)), 20_000);
    const look = () => {
      const started = logLines(out).find((l) => l.msg === "latchkey started");
      if (typeof started?.url === "string") {
        clearTimeout(timer);
        resolve(started.url);
      }
    };
    child.stdout?.on("data", look);
    exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before starting:\n${out}`));
    });
  });
  return { child, url, output: () => out, exited: () => exit };
}
