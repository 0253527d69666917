// The README is what a newcomer follows: its tables must say what the code does, and its first
// calls must work as written against a server started as the quick start starts it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { compatTables, configTable, notesOf, probeMethods, section } from "../scripts/readme.ts";
import { servedServices } from "../src/api/services.ts";
import { killAll, logLines, type ServerProcess, spawnLatchkey } from "./support/process.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const readme = readFileSync("README.md", "utf8");
const outOfDate = "the README is out of date: run `npm run docs` and commit the result";

// The fenced blocks of one README section, in order.
function blocks(heading: string, lang: string): string[] {
  const from = readme.indexOf(`\n## ${heading}\n`);
  assert.ok(from >= 0, `README has no "## ${heading}"`);
  const next = readme.indexOf("\n## ", from + 1);
  const text = readme.slice(from, next < 0 ? undefined : next);
  return [...text.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, "g"))].map((m) => m[1]!);
}

describe("the README", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer("sqlite");
  });
  after(() => server.stop());

  it("lists every setting of the configuration schema", () => {
    assert.equal(section(readme, "configuration"), configTable(), outOfDate);
  });

  it("lists every method of every service served, as implemented exactly when the server implements it", async () => {
    const services = servedServices(server.running.app).map((s) => s.service);
    const truth = await probeMethods(server.url, server.adminToken, services);
    assert.ok([...truth.values()].includes(true) && [...truth.values()].includes(false));
    const current = section(readme, "compatibility");
    assert.equal(current, compatTables(services, truth, notesOf(current)), outOfDate);
    for (const s of services)
      assert.match(current, new RegExp(`### \`${s.typeName.replace(/\./g, "\\.")}\``));
  });
});

describe("the README's first calls", () => {
  // A directory of its own, as a newcomer's checkout: the server keeps .latchkey/ in it.
  const home = mkdtempSync(join(tmpdir(), "latchkey-readme-"));
  // The client example must find @zitadel/client, so it is written inside the project.
  const scratch = join(process.cwd(), ".tmp");
  let server: ServerProcess;
  let port = "";
  before(async () => {
    server = await spawnLatchkey({}, home);
    port = new URL(server.url).port;
  });
  after(() => {
    killAll();
    rmSync(home, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });
  const here = (text: string) => text.replaceAll("localhost:8080", `127.0.0.1:${port}`);

  it("work with curl as written", () => {
    const [create, otp] = blocks("A first call", "sh");
    assert.ok(create && otp);
    const run = (script: string) => {
      const r = spawnSync("bash", ["-euo", "pipefail", "-c", here(script)], { cwd: home, encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    const created = JSON.parse(run(create));
    assert.match(created.userId, /^\d+$/);
    assert.equal(created.details.resourceOwner.length > 0, true);
    // The second block runs in the same shell session as the first: its TOKEN is still set.
    const session = create.split("\n").filter((l) => l.startsWith("TOKEN="));
    const answers = run([...session, otp.replace("<the userId above>", created.userId)].join("\n"))
      .split("\n")
      .filter((l) => l.trim() !== "")
      .join("")
      .replace(/\}\{/g, "}\n{")
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(answers.length, 2, JSON.stringify(answers));
    const [added, removed] = answers.map((a) => Number(a.details?.sequence));
    assert.ok(added && removed === added + 1, "OTP SMS added, then removed, on the user's own sequence");
  });

  it("work with @zitadel/client as written", () => {
    const [example] = blocks("A first call", "ts");
    assert.ok(example);
    mkdirSync(scratch, { recursive: true });
    const file = join(scratch, `readme-client-${process.pid}.ts`);
    writeFileSync(file, here(example));
    const r = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), file], {
      cwd: home,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "grace 1", "the new user, active");
  });

  it("show a request in the log and its counter at /metrics", async () => {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(
      metrics,
      /^latchkey_requests_total\{protocol="rest",method="zitadel\.user\.v2\.UserService\/AddOTPSMS",code="ok"\} 1$/m,
    );
    // The server writes its log asynchronously; the line comes, if not always at once.
    const logged = () =>
      logLines(server.output()).some(
        (l) =>
          l.msg === "request" &&
          l.protocol === "grpc" &&
          l.method === "zitadel.user.v2.UserService/AddHumanUser" &&
          l.code === "ok" &&
          typeof l.callerId === "string",
      );
    for (let waited = 0; !logged() && waited < 10_000; waited += 100)
      await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(logged(), server.output());
  });
});
