// `npm run build` (with the server): bundles the web console (console/) into dist/console/,
// which the server serves at /ui/console/. Built files carry a content hash in their names, so
// that browsers may keep them; index.html names the current ones.
import { copyFileSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
export const consoleOut = join(root, "dist", "console");

export async function buildConsole(out = consoleOut): Promise<string[]> {
  // Built beside the target and then swapped in, so that a server starting meanwhile reads
  // either the old build or the new one, never half of one.
  const tmp = `${out}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: { app: "console/src/main.ts", styles: "console/styles.css" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome111", "firefox113", "safari16.4"],
    charset: "utf8",
    legalComments: "linked",
    outdir: tmp,
    entryNames: "[name]-[hash]",
    metafile: true,
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const script = outputs.find((f) => /^app-.*\.js$/.test(f));
  const style = outputs.find((f) => /^styles-.*\.css$/.test(f));
  if (!script || !style) throw new Error(`the console build made no script or style: ${outputs.join(", ")}`);
  const html = readFileSync(join(root, "console", "index.html"), "utf8")
    .replace("__SCRIPT__", script)
    .replace("__STYLE__", style);
  writeFileSync(join(tmp, "index.html"), html);
  copyFileSync(join(root, "console", "favicon.svg"), join(tmp, "favicon.svg"));
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return ["index.html", "favicon.svg", ...outputs];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const files = await buildConsole();
  console.log(`console built into ${consoleOut}: ${files.join(", ")}`);
}
