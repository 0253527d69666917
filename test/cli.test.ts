// The `latchkey` command as an operator runs it: a separate process, configured by environment
// and file, its answers read from stdout, stderr and the exit status.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { parse as parseYaml } from "yaml";
import { rest } from "./support/clients.ts";
import { databaseKinds, freshDatabase } from "./support/databases.ts";
import { killAll, latchkeyBin, spawnLatchkey } from "./support/process.ts";

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

// Without a terminal and with CI=true, as in CI: progress must stay out of the output.
function latchkey(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [latchkeyBin, ...args], {
      cwd: cwd ?? process.cwd(),
      env: { ...process.env, CI: "true", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const dbUrl = (config: { kind: string; path?: string; url?: string }) =>
  config.kind === "sqlite" ? `sqlite:${config.path}` : config.url!;

describe("the latchkey command", () => {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-cli-"));
  after(() => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it("explains itself and each command with --help", async () => {
    const overview = await latchkey(["--help"]);
    assert.equal(overview.status, 0);
    for (const name of ["start", "migrate", "verify", "config", "admin create-pat"]) {
      assert.match(overview.stdout, new RegExp(`^  ${name} `, "m"));
      const help = await latchkey([...name.split(" "), "--help"]);
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^Usage: latchkey ${name}`));
      assert.match(help.stdout, /--config <file>/);
    }
  });

  it("refuses an unknown command or option with status 2", async () => {
    const unknown = await latchkey(["serve"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command "serve"/);
    const option = await latchkey(["migrate", "--dry-run"]);
    assert.equal(option.status, 2);
    assert.match(option.stderr, /--dry-run/);
    assert.equal((await latchkey([])).status, 2);
  });

  it("migrates a fresh SQLite file and exits, quietly when not on a terminal", async () => {
    const path = join(dir, "fresh", "latchkey.db");
    const r = await latchkey(["migrate"], { LATCHKEY_DATABASE_URL: `sqlite:${path}` });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, `database schema is up to date: sqlite:${path}\n`);
    const db = new Database(path, { readonly: true });
    try {
      const { n } = db.prepare("SELECT count(*) AS n FROM schema_migrations").get() as { n: number };
      assert.ok(n >= 1);
      assert.ok(db.prepare("SELECT name FROM sqlite_master WHERE name = 'events'").get());
      assert.equal(
        (db.prepare("SELECT count(*) AS n FROM instances").get() as { n: number }).n,
        0,
        "migrate creates no instance",
      );
    } finally {
      db.close();
    }
  });

  if (databaseKinds.includes("postgres")) {
    it("migrates a fresh PostgreSQL database and exits", async () => {
      const database = await freshDatabase("postgres");
      try {
        const url = dbUrl(database.config);
        const r = await latchkey(["migrate"], { LATCHKEY_DATABASE_URL: url });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /^database schema is up to date: postgres/);
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          const { rows } = await client.query("SELECT count(*)::int AS n FROM schema_migrations");
          assert.ok(rows[0].n >= 1);
          const events = await client.query("SELECT to_regclass('events') AS t");
          assert.equal(events.rows[0].t, "events");
        } finally {
          await client.end();
        }
      } finally {
        await database.drop();
      }
    });
  }

  it("prints the effective configuration as YAML with its sources, passwords hidden", async () => {
    const file = join(dir, "effective.yaml");
    writeFileSync(file, "port: 9000\nhost: 0.0.0.0\nlog:\n  level: warn\n");
    const r = await latchkey(["config", "--config", file], {
      LATCHKEY_PORT: "9001",
      LATCHKEY_DATABASE_URL: "postgres://latchkey:s3cret-pw@db.example:5432/lk",
      LATCHKEY_SMS_PROVIDER: "webhook",
      LATCHKEY_SMS_WEBHOOK_URL: "https://sms.example/hook",
      LATCHKEY_SMS_WEBHOOK_SECRET: "webhook-secret-0123",
      LATCHKEY_SMS_OUTBOX_KEY: "ab".repeat(32),
    });
    assert.equal(r.status, 0, r.stderr);
    for (const secret of ["s3cret-pw", "webhook-secret-0123", "ab".repeat(32)])
      assert.ok(!r.stdout.includes(secret), `config shows ${secret}`);
    const shown = parseYaml(r.stdout);
    assert.equal(shown.port, 9001);
    assert.equal(shown.host, "0.0.0.0");
    assert.equal(shown.log.level, "warn");
    assert.equal(shown.database.url, "postgres://latchkey:****@db.example:5432/lk");
    assert.equal(shown.database.poolSize, 10);
    assert.equal(shown.sms.webhookUrl, "https://sms.example/hook");
    assert.equal(shown.sms.webhookSecret, "****");
    assert.equal(shown.sms.outboxKey, "****");
    assert.equal(shown.sms.twilioAuthToken, "", "an unset secret shows as unset");
    assert.match(r.stdout, /^port: 9001 # LATCHKEY_PORT$/m);
    assert.match(r.stdout, /^host: 0\.0\.0\.0 # from the file$/m);
    assert.match(r.stdout, /^ {2}poolSize: 10 # default$/m);
  });

  it("refuses a configuration file with an unknown key or a bad value, naming it", async () => {
    const unknown = join(dir, "unknown.yaml");
    writeFileSync(unknown, "databse:\n  url: sqlite:x.db\n");
    for (const command of [["config"], ["migrate"], ["start"], ["admin", "create-pat"]]) {
      const r = await latchkey([...command, "--config", unknown]);
      assert.equal(r.status, 2, `${command.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /databse: unknown setting/);
    }
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "port: eighty\ndatabase:\n  poolSize: 0\n");
    const r = await latchkey(["config", "--config", bad]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.yaml: port: "eighty" is not a whole number/);
    assert.match(r.stderr, /bad\.yaml: database\.poolSize: "0" is not a whole number/);
    const missing = await latchkey(["config", "--config", join(dir, "nowhere.yaml")]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /nowhere\.yaml: cannot be read/);
  });

  for (const kind of databaseKinds) {
    it(`creates a working admin token after the bootstrap file is lost (${kind})`, async () => {
      const database = await freshDatabase(kind);
      const home = mkdtempSync(join(dir, "pat-"));
      const patPath = join(home, "admin.pat");
      const env = { LATCHKEY_DATABASE_URL: dbUrl(database.config), LATCHKEY_ADMIN_PAT_PATH: patPath };
      const server = await spawnLatchkey(env);
      try {
        const first = readFileSync(patPath, "utf8").trim();
        unlinkSync(patPath);

        const created = await latchkey(["admin", "create-pat"], env);
        assert.equal(created.status, 0, created.stderr);
        assert.equal(created.stderr, "");
        const adminId = /created for user (\d+), written to /.exec(created.stdout)?.[1];
        assert.ok(adminId, created.stdout);
        assert.equal(statSync(patPath).mode & 0o777, 0o600);
        const token = readFileSync(patPath, "utf8").trim();
        assert.notEqual(token, first);
        assert.ok(!created.stdout.includes(token), "the token goes to the file only");

        const me = await rest(server.url, "GET", `/v2/users/${adminId}`, { token });
        assert.equal(me.status, 200, JSON.stringify(me.body));
        assert.equal(me.body.user.username, "admin");
        const again = await latchkey(["admin", "create-pat"], env);
        assert.equal(again.status, 2, "an existing token file is not overwritten");
        assert.match(again.stderr, /exists/);
        assert.equal(readFileSync(patPath, "utf8").trim(), token);

        const printed = await latchkey(["admin", "create-pat", "--print"], env);
        assert.equal(printed.status, 0, printed.stderr);
        const once = printed.stdout.trim();
        assert.match(once, /^\S{20,}$/);
        const org = await rest(server.url, "POST", "/v2/organizations", {
          token: once,
          body: { name: kind },
        });
        assert.equal(org.status, 201, JSON.stringify(org.body));

        const human = await rest(server.url, "POST", "/v2/users/human", {
          token,
          body: {
            username: "not-a-machine",
            profile: { givenName: "A", familyName: "B" },
            email: { email: "a@b.test" },
          },
        });
        const refused = await latchkey(["admin", "create-pat", "--print", "--user", human.body.userId], env);
        assert.equal(refused.status, 1);
        assert.match(refused.stderr, /machine users only \(COMMAND-Dv2sf\)/);
        assert.equal(refused.stdout, "");

        // What the command wrote agrees with the event log, as every write must.
        const verified = await latchkey(["verify"], env);
        assert.equal(verified.status, 0, verified.stdout + verified.stderr);
      } finally {
        server.child.kill("SIGTERM");
        await server.exited();
        await database.drop();
      }
    });
  }

  it("says what to do when the database has no instance yet", async () => {
    const path = join(dir, "empty", "latchkey.db");
    const out = join(dir, "empty", "admin.pat");
    const r = await latchkey(["admin", "create-pat", "--out", out], {
      LATCHKEY_DATABASE_URL: `sqlite:${path}`,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /run `latchkey start` once first/);
    assert.equal(existsSync(out), false);
  });
});
