import { adminCreatePat } from "./admin-create-pat.ts";
import { type Command, type Env, helpOf, parse, refusal, usageError } from "./command.ts";
import { config } from "./config.ts";
import { migrate } from "./migrate.ts";
import { start } from "./start.ts";
import { verify } from "./verify.ts";

export const commands: readonly Command[] = [start, migrate, verify, config, adminCreatePat];

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 3;
  return `Usage: latchkey <command> [options]

Latchkey: a self-hostable identity server that speaks ZITADEL's v2 API.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}

Run \`latchkey <command> --help\` for a command's options. Settings come from LATCHKEY_*
environment variables and an optional YAML file (--config); see the README's table.
`;
}

// The command a list of words names: the longest name that the words start with.
function find(args: readonly string[]): { command: Command; rest: string[] } | null {
  for (const command of [...commands].sort((a, b) => b.name.length - a.name.length)) {
    const words = command.name.split(" ");
    if (words.every((w, i) => args[i] === w)) return { command, rest: args.slice(words.length) };
  }
  return null;
}

export async function main(args: string[], env: Env): Promise<number> {
  if (args.length === 0 || args[0] === "--help" || args[0] === "-h" || args[0] === "help") {
    process.stdout.write(overview());
    return args.length === 0 ? usageError : 0;
  }
  const found = find(args);
  if (!found) {
    process.stderr.write(`latchkey: unknown command "${args.join(" ")}"\n\n${overview()}`);
    return usageError;
  }
  const { command, rest } = found;
  let values: ReturnType<typeof parse>;
  try {
    values = parse(command, rest);
  } catch (err) {
    process.stderr.write(`latchkey ${command.name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.stderr.write(`Run \`latchkey ${command.name} --help\` for its options.\n`);
    return usageError;
  }
  if (values === "help") {
    process.stdout.write(helpOf(command));
    return 0;
  }
  try {
    return await command.run(values, env);
  } catch (err) {
    const refused = refusal(err);
    if (refused !== null) return refused;
    process.stderr.write(
      `latchkey ${command.name} failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    return 1;
  }
}
