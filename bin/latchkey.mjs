#!/usr/bin/env node
// The `latchkey` command. It runs the compiled server, dist/latchkey.mjs, which `npm run build`
// writes (`npm start` and `npm test` build first). Where there is no build, or a source file it
// was built from has changed since, it says so and runs the TypeScript sources through tsx
// instead: slower to start and about 35 MB larger, but never older code than the checkout holds.
import { readFileSync, statSync } from "node:fs";

const root = new URL("../", import.meta.url);
const bundle = new URL("dist/latchkey.mjs", root);

// Why the build cannot be run, or null when it is current.
function staleness() {
  let builtAt;
  let inputs;
  try {
    builtAt = statSync(bundle).mtimeMs;
    inputs = JSON.parse(readFileSync(new URL("dist/latchkey.inputs.json", root), "utf8"));
  } catch {
    return "there is no build";
  }
  for (const file of inputs) {
    let changedAt;
    try {
      changedAt = statSync(new URL(file, root)).mtimeMs;
    } catch {
      return `${file}, which the build was made from, is gone`;
    }
    if (changedAt > builtAt) return `${file} changed after the build`;
  }
  return null;
}

const why = staleness();
let main;
if (why === null) {
  ({ main } = await import(bundle.href));
} else {
  process.stderr.write(`latchkey: ${why}; running the sources through tsx (\`npm run build\` compiles them)\n`);
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
process.exit(await main(process.argv.slice(2), process.env));
