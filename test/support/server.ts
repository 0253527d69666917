import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SmsMessage, SmsSender } from "../../src/app/ports.ts";
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
  readonly sms: SmsMessage[];
  readonly logs: string[];
  // Stops the server; with keepData the database stays for a restart.
  stop(opts?: { keepData?: boolean }): Promise<void>;
  restart(): Promise<TestServer>;
}

export async function startTestServer(
  kind: "sqlite" | "postgres" = "sqlite",
  reuse?: { database: TestDatabase; dir: string },
): Promise<TestServer> {
  const database = reuse?.database ?? (await freshDatabase(kind));
  const dir = reuse?.dir ?? mkdtempSync(join(tmpdir(), "latchkey-srv-"));
  const config: Config = {
    ...loadConfig({ LATCHKEY_PORT: "0", LATCHKEY_LOG_LEVEL: "info" }),
    database: database.config,
    adminPatPath: join(dir, "admin.pat"),
  };
  const logs: string[] = [];
  const sms: SmsMessage[] = [];
  const sender: SmsSender = {
    async send(m) {
      sms.push(m);
    },
  };
  const running = await startLatchkey(
    config,
    jsonLogger("info", (l) => logs.push(l)),
    { sms: sender },
  );
  const adminToken = readFileSync(config.adminPatPath, "utf8").trim();
  const server: TestServer = {
    url: `http://127.0.0.1:${running.port}`,
    adminToken,
    running,
    database,
    sms,
    logs,
    async stop(opts = {}) {
      await running.stop();
      if (!opts.keepData) {
        await database.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
    async restart() {
      await running.stop();
      const next = await startTestServer(kind, { database, dir });
      return next;
    },
  };
  return server;
}
