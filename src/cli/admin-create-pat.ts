import { existsSync } from "node:fs";
import { createApp } from "../app/app.ts";
import { issueOperatorToken } from "../app/operator.ts";
import { DomainError } from "../domain/errors.ts";
import { appDeps, writeSecretFile } from "../latchkey.ts";
import { jsonLogger } from "../log.ts";
import { openStore } from "../store/open.ts";
import { type Command, configHelp, configOption, loadFor, progress, UsageError } from "./command.ts";

function expiryOf(raw: string | undefined): Date | null {
  if (raw === undefined) return null;
  const at = new Date(raw);
  if (Number.isNaN(at.getTime()))
    throw new UsageError(`--expires: "${raw}" is not a date such as 2027-01-31`);
  return at;
}

export const adminCreatePat: Command = {
  name: "admin create-pat",
  summary: "Create a personal access token for a machine user, straight in the database",
  help: `For when the admin token is lost: creates a new personal access token for a machine user
by writing to the database directly, so it needs the database configuration, not the API.
Without --user the token is for the instance's admin machine user (the one the first start
created). The event it writes names SYSTEM as its creator. The token is written to a file
readable only by its owner (mode 0600), or printed once with --print.

Options:
${configHelp}
  --user <id>        The machine user's id (default: the instance's admin machine user)
  --out <file>       Where to write the token (default: the admin token file setting)
  --force            Replace the file if it exists (the token it held stays valid)
  --print            Print the token on stdout instead of writing a file
  --expires <date>   When the token stops working, e.g. 2027-01-31 (default: never)`,
  options: {
    ...configOption,
    user: { type: "string" },
    out: { type: "string" },
    force: { type: "boolean" },
    print: { type: "boolean" },
    expires: { type: "string" },
  },
  async run(values, env) {
    const { config } = loadFor(values, env);
    if (values.print && values.out !== undefined)
      throw new UsageError("--print and --out exclude each other");
    const out = typeof values.out === "string" ? values.out : config.adminPatPath;
    if (!values.print && !values.force && existsSync(out))
      throw new UsageError(`${out} exists; choose another --out, or --force to replace it`);
    const expiresAt = expiryOf(typeof values.expires === "string" ? values.expires : undefined);
    const userId = typeof values.user === "string" ? values.user : undefined;

    const say = progress(env);
    say("opening the database");
    const store = await openStore(config.database);
    try {
      const instance = await store.getInstance();
      if (!instance) {
        process.stderr.write("The database holds no instance yet: run `latchkey start` once first.\n");
        return 1;
      }
      const log = jsonLogger("warn", (line) => process.stderr.write(line));
      const app = createApp(appDeps(config, store, log), instance.id);
      say("creating the token");
      let pat: Awaited<ReturnType<typeof issueOperatorToken>>;
      try {
        pat = await issueOperatorToken(app, userId, expiresAt);
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        process.stderr.write(`${err.message} (${err.id})\n`);
        return 1;
      }
      if (values.print) {
        process.stdout.write(`${pat.token}\n`);
        process.stderr.write(
          `token ${pat.tokenId} created for user ${pat.userId}; it is not stored anywhere else\n`,
        );
      } else {
        writeSecretFile(out, `${pat.token}\n`);
        process.stdout.write(`token ${pat.tokenId} created for user ${pat.userId}, written to ${out}\n`);
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};
