// `tsx src/main.ts` starts the server as it did before the `latchkey` command existed; the
// command itself is bin/latchkey.mjs -> src/cli/main.ts.
import { main } from "./cli/main.ts";

process.exit(await main(["start", ...process.argv.slice(2)], process.env));
