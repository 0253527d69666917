import { withoutPassword } from "../config.ts";
import { openStore } from "../store/open.ts";
import { type Command, configHelp, configOption, loadFor, progress } from "./command.ts";

export const migrate: Command = {
  name: "migrate",
  summary: "Bring the database schema up to date, then exit",
  help: `Opens the configured database and applies the migrations it has not had yet, then exits.
\`latchkey start\` does the same at every start; run this to migrate ahead of a rollout or to
check that the database is reachable. On PostgreSQL several nodes may run it at once: one
migrates while the others wait.

Options:
${configHelp}`,
  options: configOption,
  async run(values, env) {
    const { config } = loadFor(values, env);
    const db = config.database;
    const where = db.kind === "sqlite" ? `sqlite:${db.path}` : withoutPassword(db.url);
    progress(env)(`migrating ${where}`);
    const store = await openStore(db);
    await store.close();
    process.stdout.write(`database schema is up to date: ${where}\n`);
    return 0;
  },
};
