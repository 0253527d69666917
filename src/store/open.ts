import type { Store } from "../app/ports.ts";
import { type DatabaseConfig, defaults } from "../config.ts";
import { openPostgresStore } from "./postgres/store.ts";
import { openSqliteStore } from "./sqlite/store.ts";

export async function openStore(db: DatabaseConfig): Promise<Store> {
  if (db.kind === "sqlite") return openSqliteStore(db.path);
  return openPostgresStore({
    url: db.url,
    poolSize: db.poolSize ?? Number(defaults.LATCHKEY_DATABASE_POOL_SIZE),
    statementTimeoutMs: db.statementTimeoutMs ?? Number(defaults.LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS),
    connectTimeoutMs: db.connectTimeoutMs ?? Number(defaults.LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS),
  });
}
