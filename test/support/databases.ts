import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { DatabaseConfig } from "../../src/config.ts";

// A database a test can use and throw away: a fresh SQLite file, or a fresh PostgreSQL
// database when the runner found a server (scripts/test.mjs sets the admin URL).
export interface TestDatabase {
  readonly name: "sqlite" | "postgres";
  readonly config: DatabaseConfig;
  drop(): Promise<void>;
}

const pgAdmin = process.env.LATCHKEY_TEST_POSTGRES_ADMIN_URL;

export const databaseKinds: readonly ("sqlite" | "postgres")[] = pgAdmin
  ? ["sqlite", "postgres"]
  : ["sqlite"];

export async function freshDatabase(kind: "sqlite" | "postgres"): Promise<TestDatabase> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "latchkey-test-"));
    return {
      name: "sqlite",
      config: { kind: "sqlite", path: join(dir, "latchkey.db") },
      async drop() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (!pgAdmin) throw new Error("no PostgreSQL for tests: LATCHKEY_TEST_POSTGRES_ADMIN_URL is unset");
  // scripts/test.mjs drops lk_t_<run>_* after the run, should a test not get to drop its own.
  const run = process.env.LATCHKEY_TEST_RUN_ID ?? "adhoc";
  const name = `lk_t_${run}_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: pgAdmin });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(pgAdmin);
  url.pathname = `/${name}`;
  return {
    name: "postgres",
    config: { kind: "postgres", url: url.toString() },
    async drop() {
      const c = new pg.Client({ connectionString: pgAdmin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}
