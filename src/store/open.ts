import type { Store } from "../app/ports.ts";
import { type DatabaseConfig, defaults } from "../config.ts";
import { openPostgresStore } from "./postgres/store.ts";
import { openSqliteStore } from "./sqlite/store.ts";

export interface OpenOptions {
  // false: take the schema as found. A check such as verify must not change what it checks,
  // and a read replica could not be migrated anyway.
  readonly migrate?: boolean;
}

export async function openStore(db: DatabaseConfig, options: OpenOptions = {}): Promise<Store> {
  if (db.kind === "sqlite") return openSqliteStore(db.path, options);
  return openPostgresStore(
    {
      url: db.url,
      poolSize: db.poolSize ?? Number(defaults.LATCHKEY_DATABASE_POOL_SIZE),
      statementTimeoutMs: db.statementTimeoutMs ?? Number(defaults.LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS),
      connectTimeoutMs: db.connectTimeoutMs ?? Number(defaults.LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS),
    },
    options,
  );
}
