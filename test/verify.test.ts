// Verify rebuilds the read models from the event log and reports where the stored ones differ:
// clean after real traffic, and loud about rows changed behind Latchkey's back.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { type Difference, verify } from "../src/app/verify.ts";
import type { DatabaseConfig } from "../src/config.ts";
import { openStore } from "../src/store/open.ts";
import { registerFunctions } from "../src/store/sqlite/functions.ts";
import { clients, rest } from "./support/clients.ts";
import { databaseKinds, freshDatabase } from "./support/databases.ts";
import { callerWith, humanUser, newOrg } from "./support/fixtures.ts";
import { startTestServer } from "./support/server.ts";

const urlOf = (config: DatabaseConfig) => (config.kind === "sqlite" ? `sqlite:${config.path}` : config.url);

// `npm run verify` as an operator runs it.
async function runVerify(url: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/verify-main.ts"], {
    env: { ...process.env, LATCHKEY_DATABASE_URL: url },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const [code] = await once(child, "exit");
  return { code: code as number | null, out };
}

// Changes rows the way an operator's stray UPDATE would: past Latchkey, straight in SQL.
async function tamper(config: DatabaseConfig, statements: { sqlite: string; postgres: string }[]) {
  if (config.kind === "sqlite") {
    const db = new Database(config.path);
    // The users indexes call Latchkey's lk_lower; a connection without it cannot write users.
    registerFunctions(db);
    try {
      for (const s of statements) db.exec(s.sqlite);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: config.url });
  await client.connect();
  try {
    for (const s of statements) await client.query(s.postgres);
  } finally {
    await client.end();
  }
}

const find = (ds: readonly Difference[], model: Difference["model"], key: string) =>
  ds.filter((d) => d.model === model && d.key === key);

for (const kind of databaseKinds) {
  describe(`verify (${kind})`, () => {
    it("finds nothing to report after real traffic, and the script exits 0", async () => {
      const server = await startTestServer(kind);
      try {
        const admin = clients(server.url, server.adminToken);
        const orgId = await newOrg(admin);
        const kept = await humanUser(admin, { orgId });
        await admin.users.addOTPSMS({ userId: kept.userId });
        await rest(server.url, "DELETE", `/v2/users/${kept.userId}/otp_sms`, { token: server.adminToken });
        await admin.users.addOTPSMS({ userId: kept.userId });
        const gone = await humanUser(admin);
        await admin.users.addOTPSMS({ userId: gone.userId });
        await admin.users.deleteUser({ userId: gone.userId });
        const caller = await callerWith(admin, { orgId }, ["ORG_OWNER"], orgId);
        const second = await admin.users.addPersonalAccessToken({ userId: caller.userId });
        await admin.users.removePersonalAccessToken({ userId: caller.userId, tokenId: second.tokenId });

        const report = await verify(server.running.app.deps.store);
        assert.deepEqual(report.differences, []);
        assert.equal(report.instanceId, server.running.app.instanceId);
        // Instance, default org, admin, the new org and three users.
        assert.equal(report.aggregates, 7);
        assert.ok(report.events >= 20, `${report.events} events`);

        const run = await runVerify(urlOf(server.database.config));
        assert.equal(run.code, 0, run.out);
        assert.match(run.out, new RegExp(`Instance ${report.instanceId}: ${report.events} events`));
        assert.match(run.out, /OK: every sequence is gap-free/);
      } finally {
        await server.stop();
      }
    });

    it("reports read-model rows and events changed directly in SQL, and the script exits 1", async () => {
      const server = await startTestServer(kind);
      try {
        const admin = clients(server.url, server.adminToken);
        const orgId = await newOrg(admin);
        const target = await humanUser(admin, { orgId });
        const otp = await humanUser(admin, { orgId });
        const added = await admin.users.addOTPSMS({ userId: otp.userId });
        const caller = await callerWith(admin, { orgId }, ["ORG_OWNER"], orgId);
        const instanceId = server.running.app.instanceId;
        const store = server.running.app.deps.store;
        assert.deepEqual((await verify(store)).differences, []);

        await tamper(server.database.config, [
          {
            sqlite: `UPDATE users SET state = json_set(state, '$.otpSms', json('true')) WHERE id = '${target.userId}'`,
            postgres: `UPDATE users SET state = jsonb_set(state, '{otpSms}', 'true') WHERE id = '${target.userId}'`,
          },
          {
            sqlite: `DELETE FROM tokens WHERE user_id = '${caller.userId}'`,
            postgres: `DELETE FROM tokens WHERE user_id = '${caller.userId}'`,
          },
          {
            sqlite: `INSERT INTO members VALUES ('${instanceId}', '${target.userId}', 'org', '${orgId}', '["ORG_OWNER"]')`,
            postgres: `INSERT INTO members VALUES ('${instanceId}', '${target.userId}', 'org', '${orgId}', '["ORG_OWNER"]')`,
          },
          {
            sqlite: `UPDATE orgs SET name = 'Renamed' WHERE id = '${orgId}'`,
            postgres: `UPDATE orgs SET name = 'Renamed' WHERE id = '${orgId}'`,
          },
          // The OTP event moves up: the user's log now skips sequence numbers.
          {
            sqlite: `UPDATE events SET sequence = sequence + 10 WHERE aggregate_id = '${otp.userId}' AND sequence = ${added.details?.sequence}`,
            postgres: `UPDATE events SET sequence = sequence + 10 WHERE aggregate_id = '${otp.userId}' AND sequence = ${added.details?.sequence}`,
          },
        ]);

        const { differences } = await verify(store);
        const sequence = Number(added.details?.sequence);
        assert.deepEqual(find(differences, "users", target.userId), [
          {
            model: "users",
            key: target.userId,
            problem: "differs",
            detail: "state.otpSms: expected false, found true",
          },
        ]);
        const tokens = differences.filter((d) => d.model === "tokens");
        assert.equal(tokens.length, 1, JSON.stringify(differences));
        assert.equal(tokens[0]!.problem, "missing");
        assert.deepEqual(
          find(differences, "members", `${target.userId} in ${orgId}`).map((d) => d.problem),
          ["unexpected"],
        );
        const renamed = find(differences, "orgs", orgId);
        assert.equal(renamed.length, 1, JSON.stringify(differences));
        assert.match(renamed[0]!.detail, /^name: expected "org-[^"]+", found "Renamed"$/);
        const gaps = find(differences, "events", `user/${otp.userId}`);
        assert.deepEqual(
          gaps.map((d) => d.problem),
          ["gap"],
        );
        assert.match(gaps[0]!.detail, new RegExp(`^sequence ${sequence + 10} follows ${sequence - 1} `));
        // Nothing else was touched, so nothing else is reported.
        const touched = new Set([target.userId, otp.userId, orgId, `${target.userId} in ${orgId}`]);
        assert.deepEqual(
          differences.filter((d) => d.model !== "tokens" && !touched.has(d.key.replace(/^user\//, ""))),
          [],
        );

        const run = await runVerify(urlOf(server.database.config));
        assert.equal(run.code, 1, run.out);
        assert.match(run.out, new RegExp(`users ${target.userId}: differs: state.otpSms: expected false`));
        assert.doesNotMatch(run.out, /"[0-9a-f]{64}"/, "no hash in the report");
      } finally {
        await server.stop();
      }
    });

    it("rebuilds sessions too: clean after sign-ins, loud about a changed or lost session row", async () => {
      const server = await startTestServer(kind);
      try {
        const admin = clients(server.url, server.adminToken);
        const ada = await humanUser(admin, { password: "correct horse battery staple" });
        const signIn = () =>
          admin.sessions.createSession({
            checks: {
              user: { search: { case: "userId", value: ada.userId } },
              password: { password: "correct horse battery staple" },
            },
          });
        const kept = await signIn();
        const lost = await signIn();
        const ended = await signIn();
        await admin.sessions.deleteSession({ sessionId: ended.sessionId });
        const store = server.running.app.deps.store;
        assert.deepEqual((await verify(store)).differences, []);

        await tamper(server.database.config, [
          {
            sqlite: `UPDATE sessions SET state = json_set(state, '$.passwordCheckedAt', json('null')) WHERE id = '${kept.sessionId}'`,
            postgres: `UPDATE sessions SET state = jsonb_set(state, '{passwordCheckedAt}', 'null') WHERE id = '${kept.sessionId}'`,
          },
          {
            sqlite: `DELETE FROM sessions WHERE id = '${lost.sessionId}'`,
            postgres: `DELETE FROM sessions WHERE id = '${lost.sessionId}'`,
          },
        ]);
        const { differences } = await verify(store);
        assert.deepEqual(
          differences.map((d) => [d.model, d.key, d.problem]),
          [
            ["sessions", kept.sessionId, "differs"],
            ["sessions", lost.sessionId, "missing"],
          ],
        );
        assert.match(differences[0]!.detail, /^state\.passwordCheckedAt: expected "[^"]+", found null$/);
      } finally {
        await server.stop();
      }
    });

    it("reports search columns that no longer agree with the user's state", async () => {
      const server = await startTestServer(kind);
      try {
        const admin = clients(server.url, server.adminToken);
        const target = await humanUser(admin);
        const store = server.running.app.deps.store;
        assert.deepEqual((await verify(store)).differences, []);
        // ListUsers would find this user by an address and a number it does not have.
        await tamper(server.database.config, [
          {
            sqlite: `UPDATE users SET email = 'someone@else.example', phone = '' WHERE id = '${target.userId}'`,
            postgres: `UPDATE users SET email = 'someone@else.example', phone = '' WHERE id = '${target.userId}'`,
          },
        ]);
        assert.deepEqual((await verify(store)).differences, [
          {
            model: "users",
            key: target.userId,
            problem: "differs",
            detail: `search.email: expected "${target.username}@example.com", found "someone@else.example"; search.phone: expected "+41791234567", found ""`,
          },
        ]);
      } finally {
        await server.stop();
      }
    });

    it("changes nothing it checks, and tells a database without schema or instance", async () => {
      const db = await freshDatabase(kind);
      try {
        // Nothing there yet: the script says so and creates nothing.
        const bare = await runVerify(urlOf(db.config));
        assert.equal(bare.code, 2, bare.out);
        if (kind === "sqlite") assert.match(bare.out, /No database at/);
        else assert.match(bare.out, /verify failed: .*does not exist/);
        const again = await runVerify(urlOf(db.config));
        assert.equal(again.code, 2, `the first run created nothing: ${again.out}`);

        // The schema, but no instance: no node has started on it.
        const store = await openStore(db.config);
        try {
          const report = await verify(store);
          assert.equal(report.instanceId, null);
          assert.deepEqual(
            report.differences.map((d) => [d.model, d.problem]),
            [["instance", "missing"]],
          );
        } finally {
          await store.close();
        }
        const empty = await runVerify(urlOf(db.config));
        assert.equal(empty.code, 1, empty.out);
        assert.match(empty.out, /No instance found/);
      } finally {
        await db.drop();
      }
    });
  });
}
