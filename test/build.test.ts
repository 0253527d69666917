// What `latchkey` runs: the compiled server that `npm run build` wrote, while it matches the
// sources; the sources themselves, with a word on stderr, when it does not. These run against a
// copy of the package, so that the checkout's own build is never touched.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { killAll, spawnLatchkey } from "./support/process.ts";

const here = process.cwd();

function latchkey(root: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(root, "bin", "latchkey.mjs"), ...args], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, CI: "true" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("the build latchkey runs", () => {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-build-"));
  const copy = join(dir, "pkg");
  const built = statSync(join(here, "dist", "latchkey.mjs")).mtime;

  before(() => {
    mkdirSync(copy);
    for (const f of ["bin", "src", "package.json"])
      cpSync(join(here, f), join(copy, f), { recursive: true, preserveTimestamps: true });
    cpSync(join(here, "dist"), join(copy, "dist"), { recursive: true, preserveTimestamps: true });
    symlinkSync(join(here, "node_modules"), join(copy, "node_modules"));
  });
  after(() => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs the compiled server when it was built from the sources as they are", () => {
    const r = latchkey(copy, ["--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /^Usage: latchkey <command>/);
  });

  it("serves the console from the compiled server", async () => {
    const dbDir = mkdtempSync(join(dir, "db-"));
    const server = await spawnLatchkey(
      {
        LATCHKEY_DATABASE_URL: `sqlite:${join(dbDir, "db.sqlite")}`,
        LATCHKEY_ADMIN_PAT_PATH: join(dbDir, "pat"),
      },
      here,
    );
    assert.doesNotMatch(server.output(), /running the sources/);
    const page = await fetch(`${server.url}/ui/console/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script[^>]+app-[\w-]+\.js/);
    server.child.kill("SIGTERM");
    assert.equal(await server.exited(), 0);
  });

  it("runs the sources, and says so, when a source changed after the build", () => {
    const main = join(copy, "src", "cli", "main.ts");
    const text = readFileSync(main, "utf8");
    const edited = text.replace("Latchkey: a self-hostable", "Latchkey (edited): a self-hostable");
    assert.notEqual(edited, text);
    writeFileSync(main, edited);
    // Saved a moment after the build, as an edit would be.
    const later = new Date(built.getTime() + 2000);
    utimesSync(main, later, later);

    const r = latchkey(copy, ["--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /src\/cli\/main\.ts changed after the build; running the sources through tsx/);
    assert.match(r.stdout, /Latchkey \(edited\): a self-hostable/);
  });

  it("runs the sources, and says so, when there is no build", () => {
    rmSync(join(copy, "dist", "latchkey.mjs"));
    const r = latchkey(copy, ["--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /there is no build; running the sources through tsx/);
    assert.match(r.stdout, /^Usage: latchkey <command>/);
  });
});
