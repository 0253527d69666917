// Three Latchkey processes on one PostgreSQL database, as behind a load balancer: they start
// together on an empty database, then take writes on the same users at the same time.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthenticationMethodType } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import pg from "pg";
import type { Store } from "../src/app/ports.ts";
import { verify } from "../src/app/verify.ts";
import { openStore } from "../src/store/open.ts";
import { clients, type Protocol, rest } from "./support/clients.ts";
import { databaseKinds, freshDatabase, type TestDatabase } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { type Ack, checkLog, type OtpCall, otpSender } from "./support/otp-load.ts";
import { killAll, type ServerProcess, spawnLatchkey } from "./support/process.ts";

const nodeCount = 3;

// A fixed sequence of choices, so that a failing run can be run again the same way.
function choices(seed: number) {
  let x = seed;
  return (n: number) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    // The high bits: the low bits of this generator repeat after a few steps.
    return Math.floor((x / 2 ** 31) * n);
  };
}

if (databaseKinds.includes("postgres")) {
  describe("three nodes on one PostgreSQL database", () => {
    let db: TestDatabase;
    let dir: string;
    let nodes: ServerProcess[] = [];
    let urls: string[] = [];
    let token = "";
    let store: Store;
    let instanceId = "";

    before(async () => {
      db = await freshDatabase("postgres");
      dir = mkdtempSync(join(tmpdir(), "latchkey-nodes-"));
      const url = (db.config as { url: string }).url;
      // All three at once on the empty database: migrations and bootstrap race.
      nodes = await Promise.all(
        Array.from({ length: nodeCount }, (_, i) =>
          spawnLatchkey({
            LATCHKEY_DATABASE_URL: url,
            LATCHKEY_DATABASE_POOL_SIZE: "4",
            LATCHKEY_ADMIN_PAT_PATH: join(dir, `admin-${i}.pat`),
          }),
        ),
      );
      urls = nodes.map((n) => n.url);
      store = await openStore(db.config);
    });

    after(async () => {
      killAll();
      await store?.close();
      await db?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("start together on an empty database: one instance, one admin token, and every node serves", async () => {
      const written = Array.from({ length: nodeCount }, (_, i) => join(dir, `admin-${i}.pat`)).filter((p) =>
        existsSync(p),
      );
      assert.equal(written.length, 1, "exactly one node wrote an admin token");
      token = readFileSync(written[0]!, "utf8").trim();

      const client = new pg.Client({ connectionString: (db.config as { url: string }).url });
      await client.connect();
      try {
        const count = async (sql: string) => Number((await client.query(sql)).rows[0].n);
        assert.equal(await count("SELECT count(*) AS n FROM instances"), 1);
        assert.equal(await count("SELECT count(DISTINCT instance_id) AS n FROM events"), 1);
        assert.equal(await count("SELECT count(*) AS n FROM events WHERE event_type = 'instance.added'"), 1);
        assert.equal(await count("SELECT count(*) AS n FROM tokens"), 1);
        assert.equal(await count("SELECT count(*) AS n FROM users"), 1);
        // Each migration ran once.
        assert.equal(
          await count("SELECT count(*) AS n FROM schema_migrations"),
          await count("SELECT count(DISTINCT version) AS n FROM schema_migrations"),
        );
      } finally {
        await client.end();
      }
      instanceId = (await store.getInstance())!.id;

      // The one token works on every node, the losers of the race included, for reads and writes.
      for (const url of urls) {
        const admin = clients(url, token);
        const user = await humanUser(admin);
        const read = await rest(url, "GET", `/v2/users/${user.userId}`, { token });
        assert.equal(read.status, 200);
      }
    });

    it("take concurrent adds and removals on the same users: nothing lost, nothing doubled", async () => {
      const users: string[] = [];
      for (let i = 0; i < 6; i++) users.push((await humanUser(clients(urls[i % nodeCount]!, token))).userId);
      const send = otpSender(urls, token);
      const pick = choices(20240611);
      const calls: OtpCall[] = Array.from({ length: 150 }, () => ({
        userId: users[pick(users.length)]!,
        add: pick(2) === 0,
        node: pick(nodeCount),
        via: pick(2) === 0 ? "rest" : "grpc",
      }));

      const acks: Ack[] = [];
      const problems: string[] = [];
      let refused = 0;
      // Twelve callers at a time, each taking the next call.
      let next = 0;
      await Promise.all(
        Array.from({ length: 12 }, async () => {
          while (next < calls.length) {
            const outcome = await send(calls[next++]!);
            if (outcome.kind === "ack") acks.push(outcome.ack);
            else if (outcome.kind === "refused") refused++;
            else problems.push(outcome.kind === "other" ? outcome.what : "unavailable");
          }
        }),
      );
      assert.deepEqual(problems, []);
      assert.equal(acks.length + refused, calls.length);
      assert.ok(acks.length >= 20, `only ${acks.length} writes were acknowledged`);
      assert.ok(new Set(acks.map((a) => a.call.node)).size === nodeCount, "every node acknowledged writes");

      await checkLog(store, instanceId, users, acks, { onlyAcked: true });
      const report = await verify(store);
      assert.deepEqual(report.differences, []);

      // Every node reads what all of them wrote.
      for (const userId of users) {
        const state = await store.getUser(instanceId, userId);
        const expected = state?.otpSms ? [AuthenticationMethodType.OTP_SMS] : [];
        for (const url of urls) {
          const listed = await clients(url, token).users.listAuthenticationMethodTypes({ userId });
          assert.deepEqual(listed.authMethodTypes, expected);
        }
      }
    });

    it("answer 25 simultaneous removals of one factor with one success and 24 NotFound", async () => {
      const owner = await humanUser(clients(urls[1]!, token));
      await clients(urls[2]!, token).users.addOTPSMS({ userId: owner.userId });
      const protocols: Protocol[] = ["grpc", "grpc-web", "connect"];
      const outcomes = await Promise.all(
        Array.from({ length: 25 }, (_, i) => {
          const url = urls[i % nodeCount]!;
          if (i % 4 === 3)
            return rest(url, "DELETE", `/v2/users/${owner.userId}/otp_sms`, { token }).then((r) =>
              r.status === 200 ? "ok" : r.status === 404 ? "not_found" : `HTTP ${r.status}`,
            );
          return clients(url, token, protocols[i % 3])
            .users.removeOTPSMS({ userId: owner.userId })
            .then(
              () => "ok",
              (err) => (ConnectError.from(err).code === Code.NotFound ? "not_found" : String(err)),
            );
        }),
      );
      assert.equal(outcomes.filter((o) => o === "ok").length, 1, outcomes.join(","));
      assert.equal(outcomes.filter((o) => o === "not_found").length, 24, outcomes.join(","));
      // The outbox worker may add its own events (the removal notice was sent): only OTP ones count.
      const events = await store.loadEvents(instanceId, { type: "user", id: owner.userId }, 0);
      assert.deepEqual(
        events.map((e) => e.type).filter((t) => t.includes(".otp.sms.")),
        ["user.human.mfa.otp.sms.added", "user.human.mfa.otp.sms.removed"],
      );
      assert.deepEqual((await verify(store)).differences, []);
    });
  });
}
