// `npm test`: format and lint, type check, build the console and the server, then every test
// file, on SQLite and, where a PostgreSQL server answers, on PostgreSQL too; the browser tests
// where Debian's Chromium is installed. In CI (CI=true) both PostgreSQL and Chromium are required.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";

const adminUrl = process.env.LATCHKEY_TEST_POSTGRES_ADMIN_URL || "postgres://postgres@127.0.0.1:5432/test";
const inCi = process.env.CI === "true";
// For a quick local run; CI ignores it.
const skipAsked = process.env.LATCHKEY_TEST_SKIP_POSTGRES === "1" && !inCi;

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { stdio: "inherit", env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === "support" ? [] : testFiles(p);
    return name.endsWith(".test.ts") ? [p] : [];
  });
}

async function postgresReachable() {
  if (skipAsked) return "LATCHKEY_TEST_SKIP_POSTGRES=1 was set";
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

// Each run names its databases lk_t_<run>_* and drops only its own, so that runs on one
// machine at the same time leave each other alone.
const runId = randomBytes(3).toString("hex");
async function dropTestDatabases() {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  const { rows } = await client.query("SELECT datname FROM pg_database WHERE datname LIKE $1", [
    `lk_t_${runId}_%`,
  ]);
  for (const r of rows) await client.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
  await client.end();
}

const only = process.argv.slice(2);
if (only.length === 0) {
  run("npx", ["biome", "check", "--error-on-warnings", "."]);
  run("npx", ["tsc", "--noEmit"]);
  run("npx", ["tsc", "--noEmit", "-p", "console"]);
}
// The tests run the server and serve the console as `npm start` would: built from the sources as
// they are now. Tests that start `latchkey` run dist/latchkey.mjs, the code that ships.
run("npx", ["tsx", "scripts/build.ts"]);

// The browser tests drive Debian's Chromium (apt-get install chromium; .ci/run installs it).
const chromium = "/usr/bin/chromium";
const haveBrowser = existsSync(chromium);
if (!haveBrowser && inCi) {
  console.error(`Chromium is required in CI but ${chromium} is missing: apt-get install -y chromium`);
  process.exit(1);
}
const isBrowserTest = (f) => f.endsWith(".e2e.test.ts");

const unreachable = await postgresReachable();
const env = { ...process.env };
if (unreachable === null) {
  env.LATCHKEY_TEST_POSTGRES_ADMIN_URL = adminUrl;
  env.LATCHKEY_TEST_RUN_ID = runId;
} else if (inCi) {
  console.error(`PostgreSQL is required in CI but ${adminUrl} did not answer: ${unreachable}`);
  process.exit(1);
} else {
  delete env.LATCHKEY_TEST_POSTGRES_ADMIN_URL;
}

const asked = only.length > 0 ? only : testFiles("test");
const files = asked.filter((f) => haveBrowser || !isBrowserTest(f));
const skippedBrowser = files.length < asked.length;
// With no file named, node --test would look for tests by itself: run nothing instead.
const result =
  files.length === 0
    ? { status: 0 }
    : spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...files], {
        stdio: "inherit",
        env,
      });
if (unreachable === null) await dropTestDatabases();
else
  console.log(
    `\nNOTE: the PostgreSQL suite was SKIPPED: no PostgreSQL answered at ${adminUrl} (${unreachable}).\n` +
      "Set LATCHKEY_TEST_POSTGRES_ADMIN_URL to run it; in CI it always runs.",
  );
if (skippedBrowser)
  console.log(
    `\nNOTE: the browser suite (test/*.e2e.test.ts) was SKIPPED: no Chromium at ${chromium}.\n` +
      "Install it with `apt-get install -y chromium` to run it; in CI it always runs.",
  );
process.exit(result.status ?? 1);
