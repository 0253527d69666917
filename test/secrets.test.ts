import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import type { SmsMessage } from "../src/app/ports.ts";
import { eventually, expectCode } from "./support/assertions.ts";
import { type Clients, clients, protocols, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, newOrg } from "./support/fixtures.ts";
import { eventLog } from "./support/hostile.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

// Tokens and codes are secrets: a sequence of calls creates and uses them over every protocol,
// including the failures that get logged, and then neither the server's log nor its database
// may hold any of them in the clear.

for (const db of databaseKinds) {
  describe(`secrets (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    const secrets = new Set<string>();
    const seenSms = new Set<SmsMessage>();
    const keep = (s: string | undefined) => {
      assert.ok(s && s.length >= 6, `expected a secret, got ${JSON.stringify(s)}`);
      secrets.add(s);
      return s;
    };
    before(async () => {
      // As production requires: SMS texts waiting in the outbox are encrypted with this key.
      server = await startTestServer(db, {
        env: { LATCHKEY_SMS_OUTBOX_KEY: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
      });
      admin = clients(server.url, server.adminToken);
      secrets.add(server.adminToken);
    });
    after(() => server.stop());

    it("creates and uses tokens and codes over every protocol", async () => {
      const org = await newOrg(admin);
      for (const protocol of protocols) {
        const c = clients(server.url, server.adminToken, protocol);
        const caller = await callerWith(c, { orgId: org }, ["ORG_OWNER"], org);
        keep(caller.token);
        const extra = await c.users.addPersonalAccessToken({ userId: caller.userId });
        keep(extra.token);
        const as = clients(server.url, caller.token, protocol);
        // A human with a code handed back, resent, verified wrongly and then rightly.
        const h = await as.users.addHumanUser({
          organization: { org: { case: "orgId", value: org } },
          profile: { givenName: "Secret", familyName: protocol },
          email: { email: `secret-${protocol}@example.com` },
          phone: { phone: "+41791234567", verification: { case: "returnCode", value: {} } },
        });
        const first = keep(h.phoneCode);
        const resent = await as.users.resendPhoneCode({
          userId: h.userId,
          verification: { case: "returnCode", value: {} },
        });
        const code = keep(resent.verificationCode);
        await expectCode(
          as.users.verifyPhone({ userId: h.userId, verificationCode: first }),
          Code.InvalidArgument,
        );
        await as.users.verifyPhone({ userId: h.userId, verificationCode: code });
        // A code that goes out by SMS.
        await as.users.setPhone({
          userId: h.userId,
          phone: "+41791234568",
          verification: { case: "sendCode", value: {} },
        });
        const sent = await eventually(
          () => server.sms.find((m) => m.to === "+41791234568" && !seenSms.has(m)),
          "the code's SMS",
        );
        seenSms.add(sent);
        keep(/([A-Z0-9]{6})/.exec(sent.text)?.[1]);
        // The token, used wrongly: truncated, in the wrong header form, after removal.
        await expectCode(
          clients(server.url, caller.token.slice(0, -1), protocol).users.getUserByID({ userId: h.userId }),
          Code.Unauthenticated,
        );
        await c.users.removePersonalAccessToken({ userId: caller.userId, tokenId: extra.tokenId });
        await expectCode(
          clients(server.url, extra.token, protocol).users.getUserByID({ userId: h.userId }),
          Code.Unauthenticated,
        );
      }
      // REST: a token created and refused, a code in a body that does not parse, a token in
      // the wrong header form.
      const machine = await callerWith(admin, null, [], org);
      keep(machine.token);
      const bad = await rest(server.url, "POST", `/v2/users/${machine.userId}/phone/verify`, {
        token: server.adminToken,
        body: `{"verificationCode": ${JSON.stringify(machine.token)}, "broken"`,
      });
      assert.equal(bad.status, 400);
      const basic = await rest(server.url, "GET", `/v2/users/${machine.userId}`, {
        headers: { authorization: `Basic ${machine.token}` },
      });
      assert.equal(basic.status, 401);
      const orgWithAdmin = await admin.orgs.addOrganization({
        name: "Secretive",
        admins: [
          {
            userType: {
              case: "human",
              value: {
                profile: { givenName: "Org", familyName: "Admin" },
                email: { email: "org-admin@example.com" },
                phone: { phone: "+41791230000", verification: { case: "returnCode", value: {} } },
              },
            },
            roles: [],
          },
        ],
      });
      keep(orgWithAdmin.createdAdmins[0]?.phoneCode);
      assert.ok(secrets.size >= 1 + protocols.length * 5 + 2);
    });

    it("never writes one of them to the log", () => {
      const logged = server.logs.join("");
      assert.ok(logged.length > 0, "the server logged nothing at all");
      for (const s of secrets) assert.ok(!logged.includes(s), `a secret was logged: ${s.slice(0, 4)}...`);
    });

    it("stores tokens and codes only hashed", async () => {
      const stored = JSON.stringify(await eventLog(server));
      for (const s of secrets)
        assert.ok(!stored.includes(s), `the event log holds a secret: ${s.slice(0, 4)}...`);
      // Tokens are found by their SHA-256; the log holds that, and only that.
      assert.ok(stored.includes(createHash("sha256").update(server.adminToken).digest("hex")));
      if (server.database.config.kind === "sqlite") {
        const path = server.database.config.path;
        const files = [path, `${path}-wal`].filter(existsSync).map((f) => readFileSync(f).toString("latin1"));
        assert.ok(files.length > 0);
        for (const s of secrets)
          assert.ok(
            !files.some((f) => f.includes(s)),
            `the database file holds a secret: ${s.slice(0, 4)}...`,
          );
      }
    });
  });
}
