import { type ParseArgsConfig, parseArgs } from "node:util";
import { type Config, ConfigError, type ConfigFile, loadConfig, readConfigFile } from "../config.ts";

export type Env = Readonly<Record<string, string | undefined>>;
type Options = NonNullable<ParseArgsConfig["options"]>;
export type Values = Record<string, string | boolean | undefined>;

export interface Command {
  // As typed after `latchkey`: "start", "admin create-pat".
  readonly name: string;
  readonly summary: string;
  // The rest of `--help` after the usage line: what it does, then its options.
  readonly help: string;
  readonly options: Options;
  run(values: Values, env: Env): Promise<number>;
}

// Exit statuses: 0 done, 1 failed while running, 2 wrongly called or configured.
export const usageError = 2;

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const configOption = {
  config: { type: "string" },
} as const satisfies Options;

export const configHelp =
  "  --config <file>    YAML configuration file; environment variables override what it says";

export function loadFor(values: Values, env: Env): { config: Config; file: ConfigFile | undefined } {
  const path = values.config;
  const file = typeof path === "string" ? readConfigFile(path) : undefined;
  return { config: loadConfig(env, file), file };
}

export function parse(command: Command, args: string[]): Values | "help" {
  const { values } = parseArgs({
    args,
    options: { ...command.options, help: { type: "boolean", short: "h" } },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";
  return values as Values;
}

export function helpOf(command: Command): string {
  const flags = Object.keys(command.options).length > 0 ? " [options]" : "";
  return `Usage: latchkey ${command.name}${flags}\n\n${command.help.trimEnd()}\n  -h, --help         Show this help\n`;
}

// Progress for a person watching; nothing in CI or when the output goes to a file or pipe.
export function progress(env: Env): (message: string) => void {
  const shown = process.stdout.isTTY === true && env.CI !== "true";
  return (message) => {
    if (shown) process.stderr.write(`… ${message}\n`);
  };
}

// What a command says when its configuration or its call is wrong: the message, and status 2.
export function refusal(err: unknown): number | null {
  if (err instanceof ConfigError || err instanceof UsageError) {
    process.stderr.write(`${err.message}\n`);
    return usageError;
  }
  return null;
}
