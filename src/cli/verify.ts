import { existsSync } from "node:fs";
import { formatReport, verify as verifyStore } from "../app/verify.ts";
import { withoutPassword } from "../config.ts";
import { openStore } from "../store/open.ts";
import { type Command, configHelp, configOption, loadFor, progress } from "./command.ts";

export const verify: Command = {
  name: "verify",
  summary: "Check every read model against the event log, changing nothing",
  help: `Rebuilds the read models from the event log, in one snapshot, and reports every difference
and sequence gap. It opens the database without migrating it, so it changes nothing and works
on a read replica. Exit status 0: all agree; 1: something differs; 2: it could not check.

Options:
${configHelp}`,
  options: configOption,
  async run(values, env) {
    const { config } = loadFor(values, env);
    const db = config.database;
    // Opening a SQLite path that does not exist would create an empty database and check that.
    if (db.kind === "sqlite" && !existsSync(db.path)) {
      process.stderr.write(`No database at ${db.path}\n`);
      return 2;
    }
    progress(env)(`verifying ${db.kind === "sqlite" ? `sqlite:${db.path}` : withoutPassword(db.url)}`);
    try {
      const store = await openStore(db, { migrate: false });
      try {
        const report = await verifyStore(store);
        process.stdout.write(formatReport(report));
        return report.differences.length === 0 ? 0 : 1;
      } finally {
        await store.close();
      }
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : "";
      process.stderr.write(`verify failed: ${err instanceof Error ? err.message : String(err)}${cause}\n`);
      return 2;
    }
  },
};
