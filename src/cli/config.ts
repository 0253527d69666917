import { stringify } from "yaml";
import { type EffectiveSetting, effectiveSettings, shown } from "../config.ts";
import { type Command, configHelp, configOption, loadFor } from "./command.ts";

// A value as YAML writes it, typed as the file would hold it.
function scalar(raw: string): string {
  const typed = /^\d+$/.test(raw) ? Number(raw) : raw === "true" || raw === "false" ? raw === "true" : raw;
  return stringify(typed).trimEnd();
}

const sourceNote = (s: EffectiveSetting) =>
  s.source === "environment" ? s.name : s.source === "file" ? "from the file" : "default";

// The effective settings as a configuration file, each with where it came from.
export function describe(effective: readonly EffectiveSetting[]): string {
  const sections = new Map<string, string[]>();
  for (const s of effective) {
    const parts = s.key.split(".");
    const leaf = parts.pop()!;
    const parent = parts.join(".");
    const indent = parent === "" ? "" : "  ";
    const lines = sections.get(parent) ?? (parent === "" ? [] : [`${parent}:`]);
    lines.push(`${indent}${leaf}: ${scalar(shown(s))} # ${sourceNote(s)}`);
    sections.set(parent, lines);
  }
  const header = "# Effective configuration: environment over file over default. Secrets are hidden.";
  return `${[header, ...(sections.get("") ?? []), ...[...sections].flatMap(([k, l]) => (k === "" ? [] : l))].join("\n")}\n`;
}

export const config: Command = {
  name: "config",
  summary: "Print the effective configuration, secrets hidden",
  help: `Checks the configuration as \`latchkey start\` would and prints every setting as YAML,
each with where it came from (a variable, the file, or the default). Passwords in database
URLs and other secrets are replaced by ****. A wrong setting is refused, naming it.

Options:
${configHelp}`,
  options: configOption,
  async run(values, env) {
    const { file } = loadFor(values, env);
    process.stdout.write(describe(effectiveSettings(env, file)));
    return 0;
  },
};
