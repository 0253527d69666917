import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { expectCode } from "./support/assertions.ts";
import { type Clients, clients, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

for (const db of databaseKinds) {
  describe(`phone numbers and codes (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    const types = async (userId: string) =>
      (
        await server.running.app.deps.store.loadEvents(
          server.running.app.instanceId,
          { type: "user", id: userId },
          0,
        )
      ).map((e) => e.type);
    before(async () => {
      server = await startTestServer(db);
      admin = clients(server.url, server.adminToken);
    });
    after(() => server.stop());

    it("verifies a phone with a returned code, counting wrong attempts", async () => {
      const user = await humanUser(admin, { phone: "" });
      const set = await admin.users.setPhone({
        userId: user.userId,
        phone: "+41 79 123 45 67",
        verification: { case: "returnCode", value: {} },
      });
      assert.match(set.verificationCode ?? "", /^[A-Z0-9]{6}$/);
      await server.smsIdle();
      assert.equal(server.sms.length, 0, "a returned code is not sent");
      await expectCode(
        admin.users.addOTPSMS({ userId: user.userId }),
        Code.FailedPrecondition,
        "COMMAND-Q54j2",
      );
      await expectCode(
        admin.users.verifyPhone({ userId: user.userId, verificationCode: "WRONG1" }),
        Code.InvalidArgument,
        "COMMAND-eis9R",
      );
      assert.equal((await types(user.userId)).at(-1), "user.human.phone.verification.failed");
      const verified = await admin.users.verifyPhone({
        userId: user.userId,
        verificationCode: set.verificationCode!,
      });
      assert.equal(verified.details?.sequence, 5n);
      await expectCode(
        admin.users.verifyPhone({ userId: user.userId, verificationCode: set.verificationCode! }),
        Code.FailedPrecondition,
      );
      await admin.users.addOTPSMS({ userId: user.userId });
    });

    it("sends the code by SMS when asked to, and stores only its hash", async () => {
      const user = await humanUser(admin, { phone: "" });
      const before = server.sms.length;
      await admin.users.setPhone({
        userId: user.userId,
        phone: "+41791112233",
        verification: { case: "sendCode", value: {} },
      });
      await server.smsIdle();
      const sms = server.sms.slice(before);
      assert.equal(sms.length, 1);
      assert.equal(sms[0]?.to, "+41791112233");
      assert.equal(sms[0]?.type, "phone_verification");
      const code = /([A-Z0-9]{6})/.exec(sms[0]?.text ?? "")?.[1] ?? "";
      const log = await server.running.app.deps.store.loadEvents(
        server.running.app.instanceId,
        { type: "user", id: user.userId },
        0,
      );
      assert.ok(!JSON.stringify(log).includes(code), "the code itself is never stored");
      await admin.users.verifyPhone({ userId: user.userId, verificationCode: code });
      await admin.users.addOTPSMS({ userId: user.userId });
    });

    it("voids a code after five wrong attempts, and a resent code replaces the old one", async () => {
      const user = await humanUser(admin, { phone: "" });
      const set = await admin.users.setPhone({
        userId: user.userId,
        phone: "+41791234500",
        verification: { case: "returnCode", value: {} },
      });
      for (let i = 0; i < 5; i++)
        await expectCode(
          admin.users.verifyPhone({ userId: user.userId, verificationCode: "AAAAAA" }),
          Code.InvalidArgument,
        );
      await expectCode(
        admin.users.verifyPhone({ userId: user.userId, verificationCode: set.verificationCode! }),
        Code.FailedPrecondition,
        "LK-NOCODE",
      );
      await expectCode(
        admin.users.resendPhoneCode({ userId: user.userId, verification: { case: "returnCode", value: {} } }),
        Code.FailedPrecondition,
        "PHONE-5xrra88eq8",
      );
      // A new number starts a new code; resending replaces it.
      const next = await admin.users.setPhone({
        userId: user.userId,
        phone: "+41791234501",
        verification: { case: "returnCode", value: {} },
      });
      const resent = await admin.users.resendPhoneCode({
        userId: user.userId,
        verification: { case: "returnCode", value: {} },
      });
      assert.notEqual(resent.verificationCode, "");
      if (resent.verificationCode !== next.verificationCode)
        await expectCode(
          admin.users.verifyPhone({ userId: user.userId, verificationCode: next.verificationCode! }),
          Code.InvalidArgument,
        );
      await admin.users.verifyPhone({ userId: user.userId, verificationCode: resent.verificationCode! });
    });

    it("ends OTP SMS when the phone changes, in the same atomic write", async () => {
      const user = await humanUser(admin);
      await admin.users.addOTPSMS({ userId: user.userId });
      const changed = await admin.users.setPhone({
        userId: user.userId,
        phone: "+41797654321",
        verification: { case: "returnCode", value: {} },
      });
      assert.equal(changed.details?.sequence, 7n);
      await server.smsIdle();
      assert.deepEqual((await types(user.userId)).slice(4), [
        "user.human.mfa.otp.sms.removed",
        "user.human.phone.changed",
        "user.human.phone.code.added",
        // the notice to the number OTP SMS had used
        "user.human.sms.sent",
      ]);
      const listed = await admin.users.listAuthenticationMethodTypes({ userId: user.userId });
      assert.deepEqual(listed.authMethodTypes, []);
      const got = await admin.users.getUserByID({ userId: user.userId });
      assert.equal(got.user?.type.case === "human" && got.user.type.value.phone?.isVerified, false);
      await expectCode(
        admin.users.addOTPSMS({ userId: user.userId }),
        Code.FailedPrecondition,
        "COMMAND-Q54j2",
      );
      await expectCode(
        admin.users.setPhone({
          userId: user.userId,
          phone: "+41797654321",
          verification: { case: "isVerified", value: true },
        }),
        Code.FailedPrecondition,
        "COMMAND-Uch5e",
      );
    });

    it("ends OTP SMS when the phone is removed", async () => {
      const user = await humanUser(admin);
      await admin.users.addOTPSMS({ userId: user.userId });
      const r = await rest(server.url, "DELETE", `/v2/users/${user.userId}/phone`, {
        token: server.adminToken,
      });
      assert.equal(r.status, 200);
      assert.equal(r.body.details.sequence, "6");
      await server.smsIdle();
      assert.deepEqual((await types(user.userId)).slice(4), [
        "user.human.mfa.otp.sms.removed",
        "user.human.phone.removed",
        "user.human.sms.sent",
      ]);
      await expectCode(admin.users.removeOTPSMS({ userId: user.userId }), Code.NotFound, "COMMAND-Sr3h3");
      await expectCode(admin.users.removePhone({ userId: user.userId }), Code.NotFound);
    });

    it("refuses bad phone numbers and changes nothing", async () => {
      const user = await humanUser(admin, { phone: "" });
      const before = await types(user.userId);
      await expectCode(
        admin.users.setPhone({ userId: user.userId, phone: "" }),
        Code.InvalidArgument,
        "PHONE-Zt0NV",
      );
      await expectCode(
        admin.users.setPhone({ userId: user.userId, phone: "12" }),
        Code.InvalidArgument,
        "PHONE-so0wa",
      );
      await expectCode(
        admin.users.setPhone({ userId: user.userId, phone: "not a number at all" }),
        Code.InvalidArgument,
        "PHONE-so0wa",
      );
      // What SMS pumping aims at: numbers that earn per message, and numbers nobody holds.
      await expectCode(
        admin.users.setPhone({ userId: user.userId, phone: "+41 900 123 456" }),
        Code.InvalidArgument,
        "LK-PHONE-PREMIUM",
      );
      await expectCode(
        admin.users.setPhone({ userId: user.userId, phone: "+44 7700 900123" }),
        Code.InvalidArgument,
        "LK-PHONE-UNASSIGNED",
      );
      assert.deepEqual(await types(user.userId), before);
    });
  });
}
