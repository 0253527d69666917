import type Database from "better-sqlite3";

// SQLite's own lower() folds ASCII letters only, so "ÉLODIE" and "élodie" would be two
// usernames where PostgreSQL (in a UTF-8 locale) and ZITADEL see one. The users indexes and the
// queries that compare names without regard to case use this instead: JavaScript's locale-free
// Unicode lowercasing. Every connection that may write users or read through those indexes must
// register it before it touches them; the sqlite3 shell knows no such function, so back the file
// up with ".backup", not ".dump" (docs/operations.md).
export const sqliteLower = "lk_lower";

export function registerFunctions(db: Database.Database): void {
  db.function(sqliteLower, { deterministic: true }, (v: unknown) =>
    typeof v === "string" ? v.toLowerCase() : v,
  );
}
