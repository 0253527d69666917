// What an operator sees of calls: one log line each, with who called what and how it ended but
// no secret, and the Prometheus counters at /metrics moving with them.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { SmsDeliveryError, type SmsSender } from "../src/app/ports.ts";
import { transact } from "../src/app/transact.ts";
import { loadConfig } from "../src/config.ts";
import type { Principal } from "../src/domain/permissions.ts";
import * as decide from "../src/domain/user/decide.ts";
import { type Running, startLatchkey } from "../src/latchkey.ts";
import { jsonLogger, prettyLine } from "../src/log.ts";
import { expectCode } from "./support/assertions.ts";
import { type Clients, clients, protocols, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

// One sample of a scrape: `name{labels} value`, labels given in any order.
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries(
      [...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return 0;
}

async function scrape(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /^text\/plain/);
  return r.text();
}

const requestLines = (logs: readonly string[]) =>
  logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === "request");

for (const db of databaseKinds) {
  describe(`logs and metrics (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let adminId: string;
    before(async () => {
      server = await startTestServer(db);
      admin = clients(server.url, server.adminToken);
      adminId = (await server.running.app.authenticate(`Bearer ${server.adminToken}`)).userId;
    });
    after(() => server.stop());

    it("logs one line per call on every protocol, with who, what and how, and never a secret", async () => {
      server.logs.length = 0;
      const secrets: string[] = [server.adminToken];
      const created = await rest(server.url, "POST", "/v2/users/human", {
        token: server.adminToken,
        headers: { "x-request-id": "trace-rest-1" },
        body: {
          username: `logged-${db}`,
          profile: { givenName: "Log", familyName: "Ged" },
          email: { email: `logged-${db}@example.com`, isVerified: true },
          phone: { phone: "+41791234000", returnCode: {} },
        },
      });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const userId: string = created.body.userId;
      secrets.push(created.body.phoneCode);
      const bySms = await admin.users.setPhone({
        userId,
        phone: "+41791234001",
        verification: { case: "returnCode", value: {} },
      });
      secrets.push(bySms.verificationCode!);
      const machine = await admin.users.createUser({
        organizationId: created.body.details.resourceOwner,
        username: `robot-${db}`,
        userType: { case: "machine", value: { name: "robot" } },
      });
      const pat = await admin.users.addPersonalAccessToken({ userId: machine.id });
      secrets.push(pat.token);
      for (const protocol of protocols) {
        await clients(server.url, pat.token, protocol).users.getUserByID({ userId: machine.id });
        await expectCode(
          clients(server.url, "wrong-token-value", protocol).users.getUserByID({ userId }),
          Code.Unauthenticated,
        );
      }
      const wrong = await rest(server.url, "GET", `/v2/users/${userId}`, { token: "wrong-token-value" });
      assert.equal(wrong.status, 401);
      await expectCode(admin.users.verifyPhone({ userId, verificationCode: "WRONG1" }), Code.InvalidArgument);
      secrets.push("wrong-token-value", "WRONG1");

      const lines = requestLines(server.logs);
      // REST addHumanUser, setPhone, createUser, addPAT, 2 on each protocol, REST 401, verifyPhone
      assert.equal(lines.length, 12, JSON.stringify(lines, null, 1));
      for (const l of lines) {
        assert.equal(typeof l.requestId, "string");
        assert.ok((l.requestId as string).length > 0);
        assert.equal(typeof l.latencyMs, "number");
        assert.ok((l.latencyMs as number) >= 0);
        assert.equal(l.level, "info");
      }
      assert.deepEqual(
        { ...lines[0], time: undefined, latencyMs: undefined },
        {
          level: "info",
          time: undefined,
          requestId: "trace-rest-1",
          protocol: "rest",
          method: "zitadel.user.v2.UserService/AddHumanUser",
          code: "ok",
          status: 200,
          latencyMs: undefined,
          callerId: adminId,
          msg: "request",
        },
      );
      for (const protocol of protocols) {
        const mine = lines.filter((l) => l.protocol === protocol);
        assert.deepEqual(
          mine.map((l) => [l.method, l.code, l.callerId]),
          [
            ...(protocol === "grpc"
              ? [
                  ["zitadel.user.v2.UserService/SetPhone", "ok", adminId],
                  ["zitadel.user.v2.UserService/CreateUser", "ok", adminId],
                  ["zitadel.user.v2.UserService/AddPersonalAccessToken", "ok", adminId],
                ]
              : []),
            ["zitadel.user.v2.UserService/GetUserByID", "ok", machine.id],
            ["zitadel.user.v2.UserService/GetUserByID", "unauthenticated", null],
            ...(protocol === "grpc"
              ? [["zitadel.user.v2.UserService/VerifyPhone", "invalid_argument", adminId]]
              : []),
          ],
          protocol,
        );
      }
      const restWrong = lines.find((l) => l.protocol === "rest" && l.code === "unauthenticated");
      assert.equal(restWrong?.status, 401);

      const all = server.logs.join("");
      for (const secret of secrets) assert.ok(!all.includes(secret), `the log holds a secret: ${secret}`);
      assert.doesNotMatch(all, /bearer|authorization/i);
    });

    it("sends the request id back, the caller's own or a new one", async () => {
      const given = await fetch(`${server.url}/v2/users/1`, {
        headers: { authorization: `Bearer ${server.adminToken}`, "x-request-id": "trace-2" },
      });
      assert.equal(given.headers.get("x-request-id"), "trace-2");
      const made = await fetch(`${server.url}/v2/users/1`, {
        headers: { authorization: `Bearer ${server.adminToken}`, "x-request-id": "no spaces allowed" },
      });
      assert.match(made.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
      const logged = requestLines(server.logs).map((l) => l.requestId);
      assert.ok(logged.includes("trace-2"));
      assert.ok(logged.includes(made.headers.get("x-request-id")));
    });

    it("counts calls, latencies, appends and SMS at /metrics", async () => {
      const method = "zitadel.user.v2.UserService/AddOTPSMS";
      await server.smsIdle();
      const smsBefore = server.sms.length;
      const beforeText = await scrape(server.url);
      const user = await humanUser(admin);
      for (const protocol of protocols) {
        const c = clients(server.url, server.adminToken, protocol);
        await c.users.addOTPSMS({ userId: user.userId });
        await c.users.removeOTPSMS({ userId: user.userId });
      }
      await expectCode(admin.users.removeOTPSMS({ userId: user.userId }), Code.NotFound);
      await admin.users.setPhone({
        userId: user.userId,
        phone: "+41791230000",
        verification: { case: "sendCode", value: {} },
      });
      const r = await rest(server.url, "POST", `/v2/users/${user.userId}/otp_sms`, {
        token: server.adminToken,
        body: {},
      });
      assert.equal(r.status, 400, "the new number is not verified yet");
      await server.smsIdle();
      const afterText = await scrape(server.url);
      // The code for the new number, and a notice to the old one each time OTP SMS ended.
      const texted = server.sms.length - smsBefore;
      assert.ok(texted >= 2, `${texted} SMS`);

      const moved = (name: string, labels: Record<string, string> = {}) =>
        sample(afterText, name, labels) - sample(beforeText, name, labels);
      for (const protocol of protocols)
        assert.equal(moved("latchkey_requests_total", { protocol, method, code: "ok" }), 1, protocol);
      assert.equal(
        moved("latchkey_requests_total", {
          protocol: "grpc",
          method: `${method.slice(0, -9)}RemoveOTPSMS`,
          code: "not_found",
        }),
        1,
      );
      assert.equal(
        moved("latchkey_requests_total", { protocol: "rest", method, code: "failed_precondition" }),
        1,
      );
      assert.equal(moved("latchkey_request_duration_seconds_count", { protocol: "connect", method }), 1);
      // humanUser, 3 adds, 3 removals, setPhone: eight appends of at least one event each, and
      // one more for each SMS, recording that it was sent.
      assert.equal(moved("latchkey_event_appends_total"), 8 + texted);
      assert.ok(moved("latchkey_events_appended_total") >= 8 + texted);
      assert.equal(moved("latchkey_sms_total", { outcome: "sent" }), texted);
      assert.equal(moved("latchkey_sms_total", { outcome: "failed" }), 0);
      assert.ok(server.sms.some((m) => m.to === "+41791230000" && m.type === "phone_verification"));
      assert.match(afterText, /^latchkey_process_cpu_seconds_total /m);
      if (db === "postgres") {
        assert.equal(sample(afterText, "latchkey_db_pool_connections", { state: "max" }), 10);
        assert.ok(sample(afterText, "latchkey_db_pool_connections", { state: "idle" }) >= 1);
        assert.match(afterText, /^latchkey_db_pool_waiting 0$/m);
      } else {
        assert.doesNotMatch(afterText, /latchkey_db_pool/, "SQLite has no pool to report");
      }
    });

    for (const by of ["caller", "background"] as const)
      it(`counts an append that lost a race and was decided again, as a ${by}'s`, async () => {
        const app = server.running.app;
        const user = await humanUser(admin);
        const principal: Principal = await app.authenticate(`Bearer ${server.adminToken}`);
        const beforeText = await scrape(server.url);
        let raced = false;
        // Another writer adds the factor between this command's read and its append.
        const stale = transact(
          app.deps,
          app.instanceId,
          principal.userId,
          async () => {
            const state = await app.users.load(user.userId);
            if (!raced) {
              raced = true;
              await app.users.addOtpSms(principal, user.userId);
            }
            const decision = decide.addOtpSms(state);
            return {
              writes: [
                {
                  ref: { type: "user", id: user.userId },
                  owner: state.orgId,
                  expectedSequence: state.sequence,
                  events: decision.events,
                },
              ],
              readModel: [],
              result: () => null,
            };
          },
          { background: by === "background" },
        );
        await assert.rejects(stale, /AlreadyReady|already/i);
        const afterText = await scrape(server.url);
        const moved = (name: string, labels: Record<string, string> = {}) =>
          sample(afterText, name, labels) - sample(beforeText, name, labels);
        assert.equal(moved("latchkey_append_conflicts_total", { by }), 1);
        const other = by === "caller" ? "background" : "caller";
        assert.equal(moved("latchkey_append_conflicts_total", { by: other }), 0);
        assert.equal(moved("latchkey_event_appends_total"), 1, "only the other writer's append was stored");
      });
  });
}

describe("metrics and logs elsewhere", () => {
  let running: Running | null = null;
  const dir = mkdtempSync(join(tmpdir(), "latchkey-obs-"));
  after(async () => {
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("counts SMS the provider refused for now, retried, and refused for good", async () => {
    const config = loadConfig({
      LATCHKEY_PORT: "0",
      LATCHKEY_DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}`,
      LATCHKEY_ADMIN_PAT_PATH: join(dir, "admin.pat"),
      LATCHKEY_SMS_RETRY_BASE_MS: "10",
    });
    const logs: string[] = [];
    // The first number is refused once for now, then taken; the second is refused for good.
    let calls = 0;
    const sender: SmsSender = {
      name: "flaky",
      async send(m) {
        calls++;
        if (m.to.endsWith("9999")) throw new SmsDeliveryError("permanent", "number blocked");
        if (calls === 1) throw new SmsDeliveryError("transient", "provider busy");
        return { providerMessageId: null };
      },
    };
    running = await startLatchkey(
      config,
      jsonLogger("info", (l) => logs.push(l)),
      { sms: sender },
    );
    const url = `http://127.0.0.1:${running.port}`;
    const admin = clients(url, readFileSync(config.adminPatPath, "utf8").trim());
    for (const phone of ["+41791238888", "+41791239999"]) {
      const user = await humanUser(admin);
      await admin.users.setPhone({
        userId: user.userId,
        phone,
        verification: { case: "sendCode", value: {} },
      });
    }
    let text = "";
    for (let waited = 0; waited < 10_000; waited += 50) {
      await running.outbox.idle();
      text = await scrape(url);
      if (sample(text, "latchkey_sms_total", { outcome: "sent" }) >= 1) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(sample(text, "latchkey_sms_total", { outcome: "sent" }), 1);
    assert.equal(sample(text, "latchkey_sms_total", { outcome: "retried" }), 1);
    assert.equal(sample(text, "latchkey_sms_total", { outcome: "failed" }), 1);
    assert.ok(logs.some((l) => l.includes("sms failed")));
  });

  it("serves no /metrics when metrics are turned off", async () => {
    const config = loadConfig({
      LATCHKEY_PORT: "0",
      LATCHKEY_METRICS_ENABLED: "false",
      LATCHKEY_DATABASE_URL: `sqlite:${join(dir, "off.sqlite")}`,
      LATCHKEY_ADMIN_PAT_PATH: join(dir, "off.pat"),
    });
    const off = await startLatchkey(config, jsonLogger("silent"));
    try {
      const r = await fetch(`http://127.0.0.1:${off.port}/metrics`);
      assert.notEqual(r.status, 200);
    } finally {
      await off.stop();
    }
  });

  it("writes readable lines for a person at a terminal", () => {
    const line = JSON.stringify({
      level: "info",
      time: "2026-01-02T03:04:05.678Z",
      requestId: "r1",
      protocol: "grpc",
      code: "ok",
      latencyMs: 1.5,
      callerId: null,
      msg: "request",
    });
    assert.equal(
      prettyLine(line, false),
      "03:04:05.678 INFO  request requestId=r1 protocol=grpc code=ok latencyMs=1.5\n",
    );
  });
});
