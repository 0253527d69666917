import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { type App, createApp } from "./app/app.ts";
import { bootstrap } from "./app/bootstrap.ts";
import { type AppDeps, type AppMetrics, type Logger, noMetrics } from "./app/deps.ts";
import { newId } from "./app/ids.ts";
import type { Clock, SmsSender, Store } from "./app/ports.ts";
import type { Config } from "./config.ts";
import { prometheusMetrics } from "./metrics/prometheus.ts";
import { type OutboxWorker, startOutboxWorker } from "./notify/outbox-worker.ts";
import { smsSenderFor } from "./notify/providers.ts";
import { passwordHasher } from "./security/password-hasher.ts";
import { startServer } from "./server/server.ts";
import { openStore } from "./store/open.ts";

export interface Running {
  readonly app: App;
  readonly port: number;
  // Where the admin token was written on this start, or null when the instance already existed.
  readonly adminPatWritten: string | null;
  // Sends what the SMS outbox holds.
  readonly outbox: OutboxWorker;
  stop(): Promise<void>;
}

export interface Overrides {
  readonly sms?: SmsSender;
  readonly clock?: Clock;
  readonly newId?: () => string;
}

// Where `npm run build` writes the console, relative to this file so that the working directory
// does not matter. The compiled server, dist/latchkey.mjs, sits one folder deep as this file
// does, so the same path names the same folder from either.
export const consoleDir = fileURLToPath(new URL("../dist/console/", import.meta.url));

export function writeSecretFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, path);
}

// What the application needs, built from the configuration. Without metrics nothing is
// counted; without an outbox worker (the CLI) stored messages wait for a running node.
export function appDeps(
  config: Config,
  store: Store,
  log: Logger,
  extras: {
    metrics?: AppMetrics | undefined;
    clock?: Clock | undefined;
    newId?: (() => string) | undefined;
    outboxReady?: () => void;
  } = {},
): AppDeps {
  return {
    store,
    clock: extras.clock ?? { now: () => new Date() },
    newId: extras.newId ?? newId,
    outboxReady: extras.outboxReady ?? (() => {}),
    passwords: passwordHasher(config.argon2),
    log,
    metrics: extras.metrics ?? noMetrics,
    settings: {
      defaultRegion: config.defaultRegion,
      codeTtlMs: config.codeTtlSeconds * 1000,
      maxConflictRetries: 20,
      sms: {
        perUserPerHour: config.sms.limitPerUser,
        perNumberPerHour: config.sms.limitPerNumber,
        perPrefixPerHour: config.sms.limitPerPrefix,
        prefixDigits: config.sms.limitPrefixDigits,
        removalNotice: config.sms.removalNotice,
        outboxKey: config.sms.outboxKey,
      },
      otpSmsTtlMs: config.otpSmsTtlSeconds * 1000,
      passwordResetTtlMs: config.passwordResetTtlSeconds * 1000,
      defaultPolicies: { passwordComplexity: config.passwordComplexity, lockout: config.lockout },
      endSessionsOnFactorRemoval: config.endSessionsOnFactorRemoval,
    },
  };
}

// Wiring: config -> adapters -> app -> server.
export async function startLatchkey(
  config: Config,
  log: Logger,
  overrides: Overrides = {},
): Promise<Running> {
  const store = await openStore(config.database);
  const metrics = config.metricsEnabled ? prometheusMetrics(store) : null;
  const sender = overrides.sms ?? smsSenderFor(config.sms, log);
  // Set once the worker runs; a message stored before that is found by its first look.
  let wakeOutbox = () => {};
  const deps = appDeps(config, store, log, {
    metrics: metrics?.app,
    clock: overrides.clock,
    newId: overrides.newId,
    outboxReady: () => wakeOutbox(),
  });
  try {
    const boot = await bootstrap(deps);
    let adminPatWritten: string | null = null;
    if (boot.adminToken) {
      writeSecretFile(config.adminPatPath, `${boot.adminToken}\n`);
      adminPatWritten = config.adminPatPath;
    }
    const app = createApp(deps, boot.instance.id);
    const listener = await startServer(app, {
      port: config.port,
      host: config.host,
      log,
      metrics,
      consoleDir,
      limits: config.limits,
    });
    const outbox = startOutboxWorker(
      {
        store,
        instanceId: boot.instance.id,
        sender,
        record: (m, outcome) => app.users.recordSms(m, outcome),
        clock: deps.clock,
        log,
      },
      {
        maxAttempts: config.sms.maxAttempts,
        retryBaseMs: config.sms.retryBaseMs,
        timeoutMs: config.sms.timeoutMs,
        concurrency: config.sms.concurrency,
        outboxKey: config.sms.outboxKey,
      },
    );
    wakeOutbox = outbox.wake;
    metrics?.watchSms(() => outbox.counters());
    return {
      app,
      port: listener.port,
      adminPatWritten,
      outbox,
      // No new requests, then no new messages: the worker finishes what is in flight.
      async stop() {
        await listener.close();
        await outbox.stop();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
