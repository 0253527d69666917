import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../src/config.ts";

describe("PostgreSQL settings", () => {
  it("come with defaults for a postgres:// URL", () => {
    const { database } = loadConfig({ LATCHKEY_DATABASE_URL: "postgres://latchkey@db:5432/latchkey" });
    assert.deepEqual(database, {
      kind: "postgres",
      url: "postgres://latchkey@db:5432/latchkey",
      poolSize: 10,
      statementTimeoutMs: 5000,
      connectTimeoutMs: 3000,
    });
  });

  it("are read from the environment", () => {
    const { database } = loadConfig({
      LATCHKEY_DATABASE_URL: "postgresql://db/latchkey",
      LATCHKEY_DATABASE_POOL_SIZE: "25",
      LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS: "2500",
      LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS: "750",
    });
    assert.deepEqual(database, {
      kind: "postgres",
      url: "postgresql://db/latchkey",
      poolSize: 25,
      statementTimeoutMs: 2500,
      connectTimeoutMs: 750,
    });
  });

  it("are checked, all problems at once, whatever the database", () => {
    assert.throws(
      () =>
        loadConfig({
          LATCHKEY_DATABASE_URL: "sqlite:/tmp/latchkey.db",
          LATCHKEY_DATABASE_POOL_SIZE: "0",
          LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS: "5s",
          LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS: "-1",
        }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /LATCHKEY_DATABASE_POOL_SIZE/.test(err.message) &&
        /LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS/.test(err.message) &&
        /LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS/.test(err.message),
    );
  });

  it("stay out of a SQLite configuration", () => {
    assert.deepEqual(loadConfig({ LATCHKEY_DATABASE_URL: "sqlite:/tmp/latchkey.db" }).database, {
      kind: "sqlite",
      path: "/tmp/latchkey.db",
    });
  });
});
