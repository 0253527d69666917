import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import * as argon2 from "@node-rs/argon2";
import * as bcrypt from "@node-rs/bcrypt";
import { UserState } from "@zitadel/proto/zitadel/user/v2/user_pb.js";
import { AuthenticationMethodType } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { expectCode } from "./support/assertions.ts";
import { type Clients, clients, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const byId = (value: string) => ({ search: { case: "userId" as const, value } });

for (const db of databaseKinds) {
  describe(`passwords and user states (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let login: Clients;
    const events = async (userId: string) =>
      server.running.app.deps.store.loadEvents(
        server.running.app.instanceId,
        { type: "user", id: userId },
        0,
      );
    // Whether a password signs the user in, as a login UI would find out.
    const signsIn = async (userId: string, password: string) => {
      try {
        await login.sessions.createSession({ checks: { user: byId(userId), password: { password } } });
        return true;
      } catch {
        return false;
      }
    };

    before(async () => {
      server = await startTestServer(db, { env: { LATCHKEY_PASSWORD_MIN_LENGTH: "10" } });
      admin = clients(server.url, server.adminToken);
      const orgId = (await humanUser(admin)).orgId;
      const client = await callerWith(admin, { instance: true }, ["IAM_LOGIN_CLIENT"], orgId);
      login = clients(server.url, client.token);
    });
    after(() => server.stop());

    it("stores passwords as argon2id hashes only, under the organization's policy", async () => {
      await expectCode(humanUser(admin, { password: "too short" }), Code.InvalidArgument, "DOMAIN-HuJf6");
      const ada = await humanUser(admin, { password: "long enough passphrase" });
      const log = await events(ada.userId);
      const changed = log.find((e) => e.type === "user.human.password.changed");
      assert.match(String(changed?.payload?.encodedHash), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      assert.ok(
        !JSON.stringify(log).includes("long enough passphrase"),
        "the password itself is never stored",
      );
      assert.ok(!server.logs.join("").includes("long enough passphrase"), "nor logged");
      const methods = await admin.users.listAuthenticationMethodTypes({ userId: ada.userId });
      assert.deepEqual(methods.authMethodTypes, [AuthenticationMethodType.PASSWORD]);
      assert.equal(await signsIn(ada.userId, "long enough passphrase"), true);
      assert.equal(await signsIn(ada.userId, "long enough passphrasE"), false);
    });

    it("imports argon2id and bcrypt hashes, and refuses hashes it cannot verify", async () => {
      const fromBcrypt = await humanUser(admin);
      const imported = await admin.users.addHumanUser({
        profile: { givenName: "Imported", familyName: "Bcrypt" },
        email: { email: `bcrypt-${fromBcrypt.userId}@example.com` },
        passwordType: {
          case: "hashedPassword",
          value: { hash: await bcrypt.hash("from another system", 4), changeRequired: true },
        },
      });
      assert.equal(await signsIn(imported.userId, "from another system"), true);
      // The first sign-in moves the imported bcrypt hash to argon2id.
      const rehashed = (await events(imported.userId)).filter(
        (e) => e.type === "user.human.password.hash.updated",
      );
      assert.equal(rehashed.length, 1);
      assert.match(String(rehashed[0]?.payload?.encodedHash), /^\$argon2id\$/);
      assert.equal(await signsIn(imported.userId, "from another system"), true);
      assert.equal(
        (await events(imported.userId)).filter((e) => e.type === "user.human.password.hash.updated").length,
        1,
      );
      const got = await admin.users.getUserByID({ userId: imported.userId });
      assert.equal(got.user?.type.case === "human" && got.user.type.value.passwordChangeRequired, true);

      const argon = await admin.users.addHumanUser({
        profile: { givenName: "Imported", familyName: "Argon" },
        email: { email: `argon-${fromBcrypt.userId}@example.com` },
        passwordType: {
          case: "hashedPassword",
          value: {
            hash: await argon2.hash("kept across systems", { memoryCost: 1024, timeCost: 1 }),
            changeRequired: false,
          },
        },
      });
      assert.equal(await signsIn(argon.userId, "kept across systems"), true);

      await expectCode(
        admin.users.addHumanUser({
          profile: { givenName: "Imported", familyName: "Plain" },
          email: { email: `md5-${fromBcrypt.userId}@example.com` },
          passwordType: {
            case: "hashedPassword",
            value: { hash: "5f4dcc3b5aa765d61d8327deb882cf99", changeRequired: false },
          },
        }),
        Code.InvalidArgument,
        "LK-PW-HASH",
      );
    });

    it("sets passwords as administrator, with the current one, and with a reset code", async () => {
      const ada = await humanUser(admin, { password: "first passphrase" });
      await admin.users.setPassword({
        userId: ada.userId,
        newPassword: { password: "second passphrase", changeRequired: false },
      });
      assert.equal(await signsIn(ada.userId, "first passphrase"), false);
      assert.equal(await signsIn(ada.userId, "second passphrase"), true);

      await expectCode(
        admin.users.setPassword({
          userId: ada.userId,
          newPassword: { password: "third passphrase", changeRequired: false },
          verification: { case: "currentPassword", value: "not the current one" },
        }),
        Code.InvalidArgument,
        "COMMAND-3M0fs",
      );
      await admin.users.setPassword({
        userId: ada.userId,
        newPassword: { password: "third passphrase", changeRequired: false },
        verification: { case: "currentPassword", value: "second passphrase" },
      });
      await expectCode(
        admin.users.setPassword({
          userId: ada.userId,
          newPassword: { password: "short", changeRequired: false },
        }),
        Code.InvalidArgument,
        "DOMAIN-HuJf6",
      );

      const reset = await rest(server.url, "POST", `/v2/users/${ada.userId}/password_reset`, {
        token: server.adminToken,
        body: { returnCode: {} },
      });
      assert.equal(reset.status, 200, JSON.stringify(reset.body));
      const code = reset.body.verificationCode as string;
      assert.match(code, /^[A-Z0-9]{6}$/);
      assert.ok(!JSON.stringify(await events(ada.userId)).includes(code), "the code itself is never stored");
      await expectCode(
        login.users.setPassword({
          userId: ada.userId,
          newPassword: { password: "fourth passphrase", changeRequired: false },
          verification: { case: "verificationCode", value: code === "AAAAAA" ? "BBBBBB" : "AAAAAA" },
        }),
        Code.InvalidArgument,
        "CODE-woT0xc",
      );
      await login.users.setPassword({
        userId: ada.userId,
        newPassword: { password: "fourth passphrase", changeRequired: false },
        verification: { case: "verificationCode", value: code },
      });
      assert.equal(await signsIn(ada.userId, "fourth passphrase"), true);
      await expectCode(
        login.users.setPassword({
          userId: ada.userId,
          newPassword: { password: "fifth passphrase", changeRequired: false },
          verification: { case: "verificationCode", value: code },
        }),
        Code.FailedPrecondition,
        "COMMAND-2M9fs",
      );
    });

    it("lets a user change their own password only with the current one", async () => {
      const ada = await humanUser(admin, { password: "first passphrase" });
      const session = await login.sessions.createSession({
        checks: { user: byId(ada.userId), password: { password: "first passphrase" } },
      });
      const self = clients(server.url, session.sessionToken);
      await expectCode(
        self.users.setPassword({
          userId: ada.userId,
          newPassword: { password: "mine, not yours", changeRequired: false },
        }),
        Code.PermissionDenied,
      );
      await expectCode(
        self.users.passwordReset({ userId: ada.userId, medium: { case: "returnCode", value: {} } }),
        Code.PermissionDenied,
      );
      await self.users.setPassword({
        userId: ada.userId,
        newPassword: { password: "mine, not yours", changeRequired: false },
        verification: { case: "currentPassword", value: "first passphrase" },
      });
      assert.equal(await signsIn(ada.userId, "mine, not yours"), true);
    });

    it("locks, unlocks, deactivates and reactivates users, and only active users sign in", async () => {
      const ada = await humanUser(admin, { password: "a fine passphrase" });
      const session = await login.sessions.createSession({
        checks: { user: byId(ada.userId), password: { password: "a fine passphrase" } },
      });
      const self = clients(server.url, session.sessionToken);
      await self.users.getUserByID({ userId: ada.userId });

      const locked = await admin.users.lockUser({ userId: ada.userId });
      assert.equal(locked.details?.resourceOwner, ada.orgId);
      assert.equal((await admin.users.getUserByID({ userId: ada.userId })).user?.state, UserState.LOCKED);
      await expectCode(
        admin.users.lockUser({ userId: ada.userId }),
        Code.FailedPrecondition,
        "COMMAND-3NN8v",
      );
      await expectCode(self.users.getUserByID({ userId: ada.userId }), Code.Unauthenticated, "AUTH-7fs1e");
      assert.equal(await signsIn(ada.userId, "a fine passphrase"), false);
      await admin.users.unlockUser({ userId: ada.userId });
      await expectCode(
        admin.users.unlockUser({ userId: ada.userId }),
        Code.FailedPrecondition,
        "COMMAND-4M0ds",
      );
      await self.users.getUserByID({ userId: ada.userId });

      await admin.users.deactivateUser({ userId: ada.userId });
      assert.equal((await admin.users.getUserByID({ userId: ada.userId })).user?.state, UserState.INACTIVE);
      await expectCode(
        admin.users.deactivateUser({ userId: ada.userId }),
        Code.FailedPrecondition,
        "COMMAND-5M0sf",
      );
      await expectCode(self.users.getUserByID({ userId: ada.userId }), Code.Unauthenticated);
      await expectCode(
        login.sessions.createSession({ checks: { user: byId(ada.userId) } }),
        Code.FailedPrecondition,
        "SESSION-Gj4ko",
      );
      await admin.users.reactivateUser({ userId: ada.userId });
      await expectCode(
        admin.users.reactivateUser({ userId: ada.userId }),
        Code.FailedPrecondition,
        "COMMAND-6M0sf",
      );
      assert.equal((await admin.users.getUserByID({ userId: ada.userId })).user?.state, UserState.ACTIVE);

      // A user cannot lift their own lock, and a caller without user.write cannot lock anyone.
      await expectCode(self.users.lockUser({ userId: ada.userId }), Code.PermissionDenied);
      const r = await rest(server.url, "POST", `/v2/users/${ada.userId}/lock`, {
        token: session.sessionToken,
        body: {},
      });
      assert.equal(r.status, 403);
      await expectCode(admin.users.lockUser({ userId: "404404" }), Code.NotFound, "COMMAND-4g3xq");
    });
  });
}
