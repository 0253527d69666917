import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthenticationMethodType } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { type Clients, clients, protocols, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

async function eventsOf(server: TestServer, userId: string) {
  return server.running.app.deps.store.loadEvents(
    server.running.app.instanceId,
    { type: "user", id: userId },
    0,
  );
}

for (const db of databaseKinds) {
  describe(`OTP SMS lifecycle (${db})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(db);
    });
    after(() => server.stop());

    for (const protocol of protocols) {
      it(`adds, lists and removes OTP SMS over ${protocol}, with exact details`, async () => {
        const admin: Clients = clients(server.url, server.adminToken, protocol);
        const user = await humanUser(admin);
        // human added, phone changed, phone verified
        assert.equal(user.sequence, 3n);

        const added = await admin.users.addOTPSMS({ userId: user.userId });
        assert.equal(added.details?.sequence, 4n);
        assert.equal(added.details?.resourceOwner, user.orgId);
        const events = await eventsOf(server, user.userId);
        const addedEvent = events.at(-1);
        assert.equal(addedEvent?.type, "user.human.mfa.otp.sms.added");
        assert.equal(addedEvent?.sequence, 4);
        assert.equal(timestampDate(added.details!.changeDate!).getTime(), addedEvent?.createdAt.getTime());

        const listed = await admin.users.listAuthenticationMethodTypes({ userId: user.userId });
        assert.deepEqual(listed.authMethodTypes, [AuthenticationMethodType.OTP_SMS]);

        const removed = await admin.users.removeOTPSMS({ userId: user.userId });
        assert.equal(removed.details?.sequence, 5n);
        assert.equal(removed.details?.resourceOwner, user.orgId);
        // The security notice to the enrolled number is recorded once it has left.
        await server.smsIdle();
        const after = await eventsOf(server, user.userId);
        assert.deepEqual(
          after.map((e) => [e.sequence, e.type]),
          [
            [1, "user.human.added"],
            [2, "user.human.phone.changed"],
            [3, "user.human.phone.verified"],
            [4, "user.human.mfa.otp.sms.added"],
            [5, "user.human.mfa.otp.sms.removed"],
            [6, "user.human.sms.sent"],
          ],
        );
        assert.equal(timestampDate(removed.details!.changeDate!).getTime(), after[4]?.createdAt.getTime());

        const empty = await admin.users.listAuthenticationMethodTypes({ userId: user.userId });
        assert.deepEqual(empty.authMethodTypes, []);

        await assert.rejects(admin.users.removeOTPSMS({ userId: user.userId }), (err: unknown) => {
          const e = ConnectError.from(err);
          assert.equal(e.code, Code.NotFound);
          assert.match(e.rawMessage, /COMMAND-Sr3h3/);
          return true;
        });
      });
    }

    it("serves the seed's REST path: DELETE /v2/users/{userId}/otp_sms answers 200 with details", async () => {
      const admin = clients(server.url, server.adminToken);
      const user = await humanUser(admin);
      const token = server.adminToken;

      const add = await rest(server.url, "POST", `/v2/users/${user.userId}/otp_sms`, { token, body: {} });
      assert.equal(add.status, 200);
      assert.equal(add.body.details.sequence, "4");

      const methods = await rest(server.url, "GET", `/v2/users/${user.userId}/authentication_methods`, {
        token,
      });
      assert.equal(methods.status, 200);
      assert.deepEqual(methods.body.authMethodTypes, ["AUTHENTICATION_METHOD_TYPE_OTP_SMS"]);

      const del = await rest(server.url, "DELETE", `/v2/users/${user.userId}/otp_sms`, { token });
      assert.equal(del.status, 200);
      const event = (await eventsOf(server, user.userId)).find((e) => e.sequence === 5);
      assert.equal(event?.type, "user.human.mfa.otp.sms.removed");
      assert.deepEqual(del.body, {
        details: {
          sequence: "5",
          changeDate: event?.createdAt.toISOString(),
          creationDate: event?.createdAt.toISOString(),
          resourceOwner: user.orgId,
        },
      });

      const again = await rest(server.url, "DELETE", `/v2/users/${user.userId}/otp_sms`, { token });
      assert.equal(again.status, 404);
      assert.deepEqual(again.body, {
        code: 5,
        message: "OTP SMS is not set up (COMMAND-Sr3h3)",
        details: [
          {
            "@type": "type.googleapis.com/zitadel.v1.ErrorDetail",
            id: "COMMAND-Sr3h3",
            message: "OTP SMS is not set up",
          },
        ],
      });
    });

    it("reads a user back with GetUserByID over REST and gRPC", async () => {
      const admin = clients(server.url, server.adminToken);
      const user = await humanUser(admin, { phone: "079 123 45 67" });
      const got = await admin.users.getUserByID({ userId: user.userId });
      assert.equal(got.user?.userId, user.userId);
      assert.equal(got.user?.type.case, "human");
      if (got.user?.type.case === "human") {
        // Read in the default region CH and stored as E.164.
        assert.equal(got.user.type.value.phone?.phone, "+41791234567");
        assert.equal(got.user.type.value.phone?.isVerified, true);
      }
      const r = await rest(server.url, "GET", `/v2/users/${user.userId}`, { token: server.adminToken });
      assert.equal(r.status, 200);
      assert.equal(r.body.user.userId, user.userId);
      assert.equal(r.body.details.sequence, "3");
      assert.equal(r.body.user.human.phone.isVerified, true);
    });
  });
}
