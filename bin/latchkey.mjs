#!/usr/bin/env node
// The `latchkey` command. Latchkey runs from its TypeScript sources through tsx, as `npm start`
// always has, so an installed package needs no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exit(await main(process.argv.slice(2), process.env));
