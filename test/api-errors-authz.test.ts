import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { expectCode } from "./support/assertions.ts";
import { type Clients, clients, protocols, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser, newOrg } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

for (const db of databaseKinds) {
  describe(`errors and authorization (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let orgA: string;
    let orgB: string;
    before(async () => {
      server = await startTestServer(db);
      admin = clients(server.url, server.adminToken);
      orgA = await newOrg(admin);
      orgB = await newOrg(admin);
    });
    after(() => server.stop());

    for (const protocol of protocols) {
      it(`answers each error with its code and ZITADEL's detail over ${protocol}`, async () => {
        const c = clients(server.url, server.adminToken, protocol);
        const unverified = await humanUser(c, { verified: false });
        await expectCode(c.users.addOTPSMS({ userId: "" }), Code.InvalidArgument, "COMMAND-QSF2s");
        await expectCode(c.users.removeOTPSMS({ userId: "" }), Code.InvalidArgument, "COMMAND-S3br2");
        await expectCode(c.users.removeOTPSMS({ userId: "x".repeat(201) }), Code.InvalidArgument);
        await expectCode(c.users.addOTPSMS({ userId: "404404" }), Code.NotFound, "COMMAND-4g3xq");
        await expectCode(
          c.users.addOTPSMS({ userId: unverified.userId }),
          Code.FailedPrecondition,
          "COMMAND-Q54j2",
        );
        const verified = await humanUser(c);
        await c.users.addOTPSMS({ userId: verified.userId });
        await expectCode(c.users.addOTPSMS({ userId: verified.userId }), Code.AlreadyExists, "COMMAND-Ad3g2");
        await expectCode(
          clients(server.url, "", protocol).users.removeOTPSMS({ userId: verified.userId }),
          Code.Unauthenticated,
        );
        await expectCode(
          clients(server.url, "not-a-token", protocol).users.removeOTPSMS({ userId: verified.userId }),
          Code.Unauthenticated,
          "AUTH-7fs1e",
        );
        await expectCode(c.users.setEmail({ userId: verified.userId, email: "a@b.c" }), Code.Unimplemented);
      });
    }

    it("maps errors to grpc-gateway's HTTP statuses and body over REST", async () => {
      const token = server.adminToken;
      const unverified = await humanUser(admin, { verified: false });
      const verified = await humanUser(admin);
      const cases: [string, string, string | undefined, number, number, string | undefined][] = [
        ["POST", `/v2/users/${unverified.userId}/otp_sms`, token, 400, 9, "COMMAND-Q54j2"],
        ["DELETE", `/v2/users/${verified.userId}/otp_sms`, token, 404, 5, "COMMAND-Sr3h3"],
        ["DELETE", "/v2/users/404404/otp_sms", token, 404, 5, "COMMAND-4g3xq"],
        ["DELETE", `/v2/users/${"x".repeat(201)}/otp_sms`, token, 400, 3, "LK-ID200"],
        ["DELETE", `/v2/users/${verified.userId}/otp_sms`, undefined, 401, 16, undefined],
        ["DELETE", `/v2/users/${verified.userId}/otp_sms`, "wrong", 401, 16, "AUTH-7fs1e"],
        ["POST", `/v2/users/${verified.userId}/email`, token, 501, 12, undefined],
        ["PUT", `/v2/users/${verified.userId}/otp_sms`, token, 405, 12, undefined],
        ["GET", "/v2/nothing/here", token, 404, 5, undefined],
      ];
      for (const [method, path, tok, status, code, id] of cases) {
        const r = await rest(server.url, method, path, {
          token: tok,
          body: method === "POST" ? {} : undefined,
        });
        assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.code, code);
        assert.equal(typeof r.body.message, "string");
        assert.ok(Array.isArray(r.body.details));
        if (id) {
          assert.deepEqual(r.body.details[0], {
            "@type": "type.googleapis.com/zitadel.v1.ErrorDetail",
            id,
            message: r.body.details[0].message,
          });
          assert.ok(r.body.message.endsWith(`(${id})`));
        }
      }
      await rest(server.url, "POST", `/v2/users/${verified.userId}/otp_sms`, { token, body: {} });
      const conflict = await rest(server.url, "POST", `/v2/users/${verified.userId}/otp_sms`, {
        token,
        body: {},
      });
      assert.equal(conflict.status, 409);
      assert.equal(conflict.body.details[0].id, "COMMAND-Ad3g2");
      const bad = await rest(server.url, "POST", `/v2/users/${verified.userId}/otp_sms`, {
        token,
        body: "{not json",
      });
      assert.equal(bad.status, 400);
      const unknownField = await rest(server.url, "POST", `/v2/users/${verified.userId}/otp_sms`, {
        token,
        body: { surprise: 1 },
      });
      assert.equal(unknownField.status, 400);
    });

    it("authorizes by role and organization before revealing anything", async () => {
      const inA = await humanUser(admin, { orgId: orgA });
      const inB = await humanUser(admin, { orgId: orgB });
      const noRole = await callerWith(admin, null, [], orgA);
      const userManagerA = await callerWith(admin, { orgId: orgA }, ["ORG_USER_MANAGER"], orgA);
      const ownerA = await callerWith(admin, { orgId: orgA }, ["ORG_OWNER"], orgA);
      const iamUserManager = await callerWith(admin, { instance: true }, ["IAM_USER_MANAGER"], orgA);
      const as = (t: string) => clients(server.url, t).users;

      // Holds no permission anywhere: 403 whether or not the user exists.
      await expectCode(
        as(noRole.token).addOTPSMS({ userId: inA.userId }),
        Code.PermissionDenied,
        "AUTH-AWfge",
      );
      await expectCode(as(noRole.token).removeOTPSMS({ userId: inA.userId }), Code.PermissionDenied);
      await expectCode(as(noRole.token).removeOTPSMS({ userId: "404404" }), Code.PermissionDenied);
      const rest403 = await rest(server.url, "DELETE", "/v2/users/404404/otp_sms", { token: noRole.token });
      assert.equal(rest403.status, 403);

      // ORG_USER_MANAGER has user.write but not user.credential.write, and only in org A.
      await expectCode(as(userManagerA.token).addOTPSMS({ userId: inA.userId }), Code.PermissionDenied);
      await admin.users.addOTPSMS({ userId: inA.userId });
      const removed = await as(userManagerA.token).removeOTPSMS({ userId: inA.userId });
      assert.equal(removed.details?.resourceOwner, orgA);
      await admin.users.addOTPSMS({ userId: inB.userId });
      await expectCode(as(userManagerA.token).removeOTPSMS({ userId: inB.userId }), Code.PermissionDenied);
      // Holds the permission somewhere, so a missing user is NotFound, as in ZITADEL.
      await expectCode(
        as(userManagerA.token).removeOTPSMS({ userId: "404404" }),
        Code.NotFound,
        "COMMAND-4g3xq",
      );

      // ORG_OWNER of A may add in A, not in B.
      const added = await as(ownerA.token).addOTPSMS({ userId: inA.userId });
      assert.equal(added.details?.resourceOwner, orgA);
      await expectCode(as(ownerA.token).removeOTPSMS({ userId: inB.userId }), Code.PermissionDenied);

      // An instance-wide IAM_USER_MANAGER removes anywhere but cannot add.
      await as(iamUserManager.token).removeOTPSMS({ userId: inB.userId });
      await expectCode(as(iamUserManager.token).addOTPSMS({ userId: inB.userId }), Code.PermissionDenied);

      // The self rule: a caller acting on its own user needs no role (and then meets the
      // factor's own preconditions), but gets nothing on another user.
      await expectCode(
        as(noRole.token).addOTPSMS({ userId: noRole.userId }),
        Code.FailedPrecondition,
        "COMMAND-Q54j2",
      );
      await expectCode(
        as(noRole.token).removeOTPSMS({ userId: noRole.userId }),
        Code.NotFound,
        "COMMAND-Sr3h3",
      );
    });

    it("refuses expired and removed tokens, and tokens of deleted users", async () => {
      const caller = await callerWith(admin, { orgId: orgA }, ["ORG_OWNER"], orgA);
      const user = await humanUser(admin, { orgId: orgA });
      const as = (t: string) => clients(server.url, t).users;
      await as(caller.token).addOTPSMS({ userId: user.userId });

      const soon = await admin.users.addPersonalAccessToken({
        userId: caller.userId,
        expirationDate: timestampFromDate(new Date(Date.now() + 1500)),
      });
      await as(soon.token).removeOTPSMS({ userId: user.userId });
      await new Promise((r) => setTimeout(r, 1600));
      await expectCode(as(soon.token).addOTPSMS({ userId: user.userId }), Code.Unauthenticated, "AUTH-7fs1e");

      const listed = await admin.users.addPersonalAccessToken({ userId: caller.userId });
      await admin.users.removePersonalAccessToken({ userId: caller.userId, tokenId: listed.tokenId });
      await expectCode(
        as(listed.token).addOTPSMS({ userId: user.userId }),
        Code.Unauthenticated,
        "AUTH-7fs1e",
      );

      await admin.users.deleteUser({ userId: caller.userId });
      await expectCode(
        as(caller.token).addOTPSMS({ userId: user.userId }),
        Code.Unauthenticated,
        "AUTH-7fs1e",
      );
    });

    it("treats a deleted user as not found, and lets a new user take the freed username", async () => {
      const user = await humanUser(admin);
      await admin.users.addOTPSMS({ userId: user.userId });
      const deleted = await admin.users.deleteUser({ userId: user.userId });
      assert.equal(deleted.details?.sequence, 5n);
      await expectCode(admin.users.removeOTPSMS({ userId: user.userId }), Code.NotFound, "COMMAND-4g3xq");
      await expectCode(admin.users.getUserByID({ userId: user.userId }), Code.NotFound, "COMMAND-4g3xq");
      const r = await rest(server.url, "GET", `/v2/users/${user.userId}/authentication_methods`, {
        token: server.adminToken,
      });
      assert.equal(r.status, 404);

      const again = {
        username: user.username,
        profile: { givenName: "New", familyName: "Owner" },
        email: { email: "new@example.com" },
      };
      const reused = await admin.users.addHumanUser(again);
      assert.notEqual(reused.userId, user.userId);
      await expectCode(admin.users.addHumanUser(again), Code.AlreadyExists, "COMMAND-k2unb");
    });
  });
}
