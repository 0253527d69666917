import { existsSync } from "node:fs";
import { formatReport, verify } from "./app/verify.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { openStore } from "./store/open.ts";

// `npm run verify`: checks the database LATCHKEY_DATABASE_URL names. Exit 0 when every read
// model equals the fold of the event log, 1 when something differs, 2 when it could not check.
async function main(): Promise<number> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  // Opening a SQLite path that does not exist would create an empty database and check that.
  if (config.database.kind === "sqlite" && !existsSync(config.database.path)) {
    process.stderr.write(`No database at ${config.database.path}\n`);
    return 2;
  }
  const store = await openStore(config.database, { migrate: false });
  try {
    const report = await verify(store);
    process.stdout.write(formatReport(report));
    return report.differences.length === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
    process.stderr.write(`verify failed: ${err instanceof Error ? err.message : String(err)}${cause}\n`);
    process.exitCode = 2;
  },
);
