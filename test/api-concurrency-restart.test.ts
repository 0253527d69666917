import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthenticationMethodType } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { clients, protocols, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { startTestServer } from "./support/server.ts";

for (const db of databaseKinds) {
  describe(`concurrency and restarts (${db})`, () => {
    it("25 simultaneous removals of one factor give one success, 24 NotFound and one event", async () => {
      const server = await startTestServer(db);
      try {
        const admin = clients(server.url, server.adminToken);
        const user = await humanUser(admin);
        await admin.users.addOTPSMS({ userId: user.userId });
        const callers = Array.from({ length: 25 }, (_, i) => {
          if (i % 4 === 3)
            return rest(server.url, "DELETE", `/v2/users/${user.userId}/otp_sms`, {
              token: server.adminToken,
            }).then((r) => (r.status === 200 ? "ok" : r.status === 404 ? "not_found" : `http ${r.status}`));
          const c = clients(server.url, server.adminToken, protocols[i % 3]);
          return c.users.removeOTPSMS({ userId: user.userId }).then(
            () => "ok",
            (err) => (ConnectError.from(err).code === Code.NotFound ? "not_found" : String(err)),
          );
        });
        const outcomes = await Promise.all(callers);
        assert.equal(outcomes.filter((o) => o === "ok").length, 1, outcomes.join(","));
        assert.equal(outcomes.filter((o) => o === "not_found").length, 24, outcomes.join(","));
        const events = await server.running.app.deps.store.loadEvents(
          server.running.app.instanceId,
          { type: "user", id: user.userId },
          0,
        );
        assert.equal(events.filter((e) => e.type === "user.human.mfa.otp.sms.removed").length, 1);
        assert.deepEqual(
          events.map((e) => e.sequence),
          events.map((_, i) => i + 1),
        );
      } finally {
        await server.stop();
      }
    });

    it("keeps state and sequences across a restart on the same database", async () => {
      let server = await startTestServer(db);
      try {
        let admin = clients(server.url, server.adminToken);
        const user = await humanUser(admin);
        await admin.users.addOTPSMS({ userId: user.userId });
        server = await server.restart();
        admin = clients(server.url, server.adminToken);
        const listed = await admin.users.listAuthenticationMethodTypes({ userId: user.userId });
        assert.deepEqual(listed.authMethodTypes, [AuthenticationMethodType.OTP_SMS]);
        const removed = await admin.users.removeOTPSMS({ userId: user.userId });
        assert.equal(removed.details?.sequence, 5n);
        assert.equal(server.running.adminPatWritten, null, "a later start changes nothing");
      } finally {
        await server.stop();
      }
    });
  });
}
