import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { type App, createApp } from "./app/app.ts";
import { bootstrap } from "./app/bootstrap.ts";
import type { AppDeps, Logger } from "./app/deps.ts";
import type { SmsSender } from "./app/ports.ts";
import type { Config } from "./config.ts";
import { logSmsSender } from "./notify/log-sender.ts";
import { startServer } from "./server/server.ts";
import { openStore } from "./store/open.ts";

export interface Running {
  readonly app: App;
  readonly port: number;
  // Where the admin token was written on this start, or null when the instance already existed.
  readonly adminPatWritten: string | null;
  stop(): Promise<void>;
}

export interface Overrides {
  readonly sms?: SmsSender;
}

function writeSecretFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, path);
}

// Wiring: config -> adapters -> app -> server.
export async function startLatchkey(
  config: Config,
  log: Logger,
  overrides: Overrides = {},
): Promise<Running> {
  const store = await openStore(config.database);
  const deps: AppDeps = {
    store,
    clock: { now: () => new Date() },
    sms: overrides.sms ?? logSmsSender(log),
    log,
    settings: {
      defaultRegion: config.defaultRegion,
      codeTtlMs: config.codeTtlSeconds * 1000,
      maxConflictRetries: 20,
    },
  };
  try {
    const boot = await bootstrap(deps);
    let adminPatWritten: string | null = null;
    if (boot.adminToken) {
      writeSecretFile(config.adminPatPath, `${boot.adminToken}\n`);
      adminPatWritten = config.adminPatPath;
    }
    const app = createApp(deps, boot.instance.id);
    const listener = await startServer(app, { port: config.port, host: config.host, log });
    return {
      app,
      port: listener.port,
      adminPatWritten,
      async stop() {
        await listener.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
