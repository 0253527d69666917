import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock, SmsMessage, SmsSender } from "../../src/app/ports.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import { type Running, startLatchkey } from "../../src/latchkey.ts";
import { jsonLogger } from "../../src/log.ts";
import { freshDatabase, type TestDatabase } from "./databases.ts";

// A Latchkey server on a free port with its own database, as a user would run it.
export interface TestServer {
  readonly url: string;
  readonly adminToken: string;
  readonly running: Running;
  readonly database: TestDatabase;
  // Where the admin token file lives; with `database`, what another node or a restart reuses.
  readonly dir: string;
  // What the in-process SMS provider received (when the server has no provider configured).
  readonly sms: SmsMessage[];
  readonly logs: string[];
  // Resolves once the SMS outbox has nothing due: what was stored before has been handled.
  smsIdle(): Promise<void>;
  // Stops the server; with keepData the database stays for a restart.
  stop(opts?: { keepData?: boolean }): Promise<void>;
  restart(): Promise<TestServer>;
}

export interface TestServerOptions {
  // Settings as environment variables (LATCHKEY_SMS_PROVIDER=webhook, a limit, ...).
  readonly env?: Readonly<Record<string, string>>;
  readonly reuse?: { readonly database: TestDatabase; readonly dir: string };
  // The server's time, for what depends on it (expiry, retry times); the real one by default.
  readonly clock?: Clock;
  // Draws the ids of users created without one; the server's own by default.
  readonly newId?: () => string;
}

export async function startTestServer(
  kind: "sqlite" | "postgres" = "sqlite",
  options: TestServerOptions = {},
): Promise<TestServer> {
  const { reuse, env = {} } = options;
  const database = reuse?.database ?? (await freshDatabase(kind));
  const dir = reuse?.dir ?? mkdtempSync(join(tmpdir(), "latchkey-srv-"));
  const config: Config = {
    ...loadConfig({ LATCHKEY_PORT: "0", LATCHKEY_LOG_LEVEL: "info", ...env }),
    database: database.config,
    adminPatPath: join(dir, "admin.pat"),
  };
  const logs: string[] = [];
  const sms: SmsMessage[] = [];
  // Without a configured provider, messages land in `sms` instead of the log.
  const sender: SmsSender = {
    name: "test",
    async send(m) {
      sms.push(m);
      return { providerMessageId: null };
    },
  };
  const running = await startLatchkey(
    config,
    jsonLogger("info", (l) => logs.push(l)),
    {
      ...(env.LATCHKEY_SMS_PROVIDER ? {} : { sms: sender }),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.newId ? { newId: options.newId } : {}),
    },
  );
  const adminToken = readFileSync(config.adminPatPath, "utf8").trim();
  const server: TestServer = {
    url: `http://127.0.0.1:${running.port}`,
    adminToken,
    running,
    database,
    dir,
    sms,
    logs,
    smsIdle: () => running.outbox.idle(),
    async stop(opts = {}) {
      await running.stop();
      if (!opts.keepData) {
        await database.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    async restart() {
      await running.stop();
      const next = await startTestServer(kind, { ...options, reuse: { database, dir } });
      return next;
    },
  };
  return server;
}
