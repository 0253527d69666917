// `tsx src/verify-main.ts` checks the database as it did before the `latchkey` command existed;
// the check itself is `latchkey verify` (src/cli/verify.ts).
import { main } from "./cli/main.ts";

process.exit(await main(["verify", ...process.argv.slice(2)], process.env));
