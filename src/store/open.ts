import type { Store } from "../app/ports.ts";
import type { DatabaseConfig } from "../config.ts";
import { openSqliteStore } from "./sqlite/store.ts";

export async function openStore(db: DatabaseConfig): Promise<Store> {
  if (db.kind === "sqlite") return openSqliteStore(db.path);
  throw new Error("PostgreSQL support is not built yet");
}
