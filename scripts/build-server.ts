// `npm run build` (with the console): compiles the server, src/cli/main.ts and all it imports,
// into one JavaScript file, dist/latchkey.mjs, which bin/latchkey.mjs runs. Running compiled
// code spares each process tsx's loader, a second V8 isolate of about 35 MB, and the
// transformation of every file at start.
//
// Packages stay outside the bundle and load from node_modules as they would from the sources:
// better-sqlite3 and @node-rs/* are native addons found by path, and pino starts its worker
// transports from files of its own.
//
// Beside the bundle, dist/latchkey.inputs.json lists the source files it was built from, so that
// bin/latchkey.mjs can tell when a source has changed since and run the sources instead of a
// stale build.
import { renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
// One level under the package root, as src/ is, so that `new URL("../dist/console/",
// import.meta.url)` in src/latchkey.ts names the same folder from the bundle and from the source.
export const serverBundle = join(root, "dist", "latchkey.mjs");
export const serverInputs = join(root, "dist", "latchkey.inputs.json");

export async function buildServer(): Promise<string[]> {
  // A source saved while the build runs must count as newer than the build: the bundle is dated
  // to when the sources were read, not to when it was written.
  const started = new Date();
  const tmp = `${serverBundle}.${process.pid}.tmp`;
  const result = await build({
    absWorkingDir: root,
    entryPoints: ["src/cli/main.ts"],
    bundle: true,
    packages: "external",
    format: "esm",
    platform: "node",
    target: "node20",
    outfile: tmp,
    // Error stacks name the TypeScript file and line.
    sourcemap: "inline",
    sourcesContent: false,
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
  });
  const inputs = Object.keys(result.metafile.inputs).sort();
  writeFileSync(serverInputs, `${JSON.stringify(inputs, null, 1)}\n`);
  utimesSync(tmp, started, started);
  // Swapped in whole: a process starting meanwhile reads the old build or the new one.
  renameSync(tmp, serverBundle);
  return inputs;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  rmSync(`${serverBundle}.${process.pid}.tmp`, { force: true });
  const inputs = await buildServer();
  console.log(`server built into ${serverBundle} from ${inputs.length} files`);
}
