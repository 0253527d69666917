// `npm run build`: the web console into dist/console/ and the server into dist/latchkey.mjs.
// Nothing built is committed: `npm start` and `npm test` run this first.
import { buildConsole, consoleOut } from "./build-console.ts";
import { buildServer, serverBundle } from "./build-server.ts";

const [consoleFiles, serverFiles] = await Promise.all([buildConsole(), buildServer()]);
console.log(`console built into ${consoleOut}: ${consoleFiles.join(", ")}`);
console.log(`server built into ${serverBundle} from ${serverFiles.length} files`);
