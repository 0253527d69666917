import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { AuthenticationMethodType } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { expectCode } from "./support/assertions.ts";
import { type Clients, clients, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const password = "correct horse battery staple";
const byLoginName = (value: string) => ({ search: { case: "loginName" as const, value } });
const byId = (value: string) => ({ search: { case: "userId" as const, value } });

// The sign-in a login UI performs, as an IAM_LOGIN_CLIENT: user and password, then the OTP SMS
// code that was sent (or returned) to the user's phone.
function signIn(server: TestServer, login: Clients) {
  return {
    async start(username: string, opts: { returnCode?: boolean; lifetimeSeconds?: number } = {}) {
      const sent = server.sms.length;
      const created = await login.sessions.createSession({
        checks: { user: byLoginName(username), password: { password } },
        challenges: { otpSms: { returnCode: opts.returnCode ?? false } },
        lifetime: opts.lifetimeSeconds ? { seconds: BigInt(opts.lifetimeSeconds), nanos: 0 } : undefined,
      });
      if (!opts.returnCode) await server.smsIdle();
      const code = opts.returnCode
        ? (created.challenges?.otpSms ?? "")
        : (/(\d{8})/.exec(server.sms.slice(sent).at(-1)?.text ?? "")?.[1] ?? "");
      assert.match(code, /^\d{8}$/);
      return { sessionId: created.sessionId, token: created.sessionToken, code };
    },
    async finish(sessionId: string, code: string) {
      const set = await login.sessions.setSession({ sessionId, checks: { otpSms: { code } } });
      return set.sessionToken;
    },
  };
}

for (const db of databaseKinds) {
  describe(`sign-in with password and OTP SMS, and self-service with the session (${db})`, () => {
    // The server's time: real time, moved forward by what a test lets pass.
    let offsetMs = 0;
    const clock = {
      now: () => new Date(Date.now() + offsetMs),
      advance: (ms: number) => {
        offsetMs += ms;
      },
    };
    let server: TestServer;
    let admin: Clients;
    let login: Clients;
    const userEvents = async (userId: string) =>
      (
        await server.running.app.deps.store.loadEvents(
          server.running.app.instanceId,
          { type: "user", id: userId },
          0,
        )
      ).map((e) => e.type);
    const person = async () => {
      const u = await humanUser(admin, { password });
      await admin.users.addOTPSMS({ userId: u.userId });
      return u;
    };

    before(async () => {
      server = await startTestServer(db, {
        env: { LATCHKEY_LOCKOUT_MAX_OTP_ATTEMPTS: "3", LATCHKEY_LOCKOUT_MAX_PASSWORD_ATTEMPTS: "3" },
        clock,
      });
      admin = clients(server.url, server.adminToken);
      const orgId = (await humanUser(admin)).orgId;
      const client = await callerWith(admin, { instance: true }, ["IAM_LOGIN_CLIENT"], orgId);
      login = clients(server.url, client.token);
    });
    after(() => server.stop());

    it("signs a person in with password and an SMS code, and reports the verified factors", async () => {
      const ada = await person();
      const flow = signIn(server, login);
      const sent = server.sms.length;
      const started = await flow.start(ada.username);
      const message = server.sms.slice(sent).at(-1);
      assert.equal(message?.to, "+41791234567");
      assert.equal(message?.type, "otp");
      const stored = JSON.stringify(
        await server.running.app.deps.store.loadEvents(
          server.running.app.instanceId,
          { type: "session", id: started.sessionId },
          0,
        ),
      );
      assert.ok(!stored.includes(started.code), "the code itself is never stored");
      assert.ok(!stored.includes(password) && !stored.includes(started.token), "nor the password or token");

      // A password alone does not stand for a user who has a second factor.
      await expectCode(
        clients(server.url, started.token).users.getUserByID({ userId: ada.userId }),
        Code.Unauthenticated,
        "AUTH-7fs1e",
      );
      const token = await flow.finish(started.sessionId, started.code);
      assert.notEqual(token, started.token, "each change issues a new token");
      await expectCode(
        clients(server.url, started.token).users.getUserByID({ userId: ada.userId }),
        Code.Unauthenticated,
      );

      const { session } = await login.sessions.getSession({ sessionId: started.sessionId });
      assert.equal(session?.factors?.user?.id, ada.userId);
      assert.equal(session?.factors?.user?.loginName, ada.username);
      assert.equal(session?.factors?.user?.organizationId, ada.orgId);
      assert.ok(session?.factors?.password?.verifiedAt);
      assert.ok(session?.factors?.otpSms?.verifiedAt);
      const byToken = await clients(server.url, token).sessions.getSession({
        sessionId: started.sessionId,
        sessionToken: token,
      });
      assert.equal(byToken.session?.id, started.sessionId);
      // The SMS left through the outbox, which recorded it on the user.
      assert.deepEqual((await userEvents(ada.userId)).slice(-3), [
        "user.human.password.check.succeeded",
        "user.human.sms.sent",
        "user.human.mfa.otp.sms.check.succeeded",
      ]);
    });

    it("lets the session token remove its own OTP SMS but not another user's, and ends the other sessions", async () => {
      const ada = await person();
      const bob = await person();
      const flow = signIn(server, login);
      const mine = await flow.start(ada.username, { returnCode: true });
      const token = await flow.finish(mine.sessionId, mine.code);
      const elsewhere = await flow.start(ada.username, { returnCode: true });
      const otherToken = await flow.finish(elsewhere.sessionId, elsewhere.code);
      const self = clients(server.url, token);

      await expectCode(self.users.removeOTPSMS({ userId: bob.userId }), Code.PermissionDenied, "AUTH-AWfge");
      const refused = await rest(server.url, "DELETE", `/v2/users/${bob.userId}/otp_sms`, { token });
      assert.equal(refused.status, 403);

      const removed = await rest(server.url, "DELETE", `/v2/users/${ada.userId}/otp_sms`, { token });
      assert.equal(removed.status, 200, JSON.stringify(removed.body));
      assert.equal(removed.body.details.resourceOwner, ada.orgId);
      assert.match(removed.body.details.sequence, /^\d+$/);
      assert.ok(removed.body.details.changeDate);

      // The other session of the same user was signed in with the factor that is gone.
      await expectCode(
        clients(server.url, otherToken).users.getUserByID({ userId: ada.userId }),
        Code.Unauthenticated,
        "AUTH-7fs1e",
      );
      await expectCode(
        login.sessions.getSession({ sessionId: elsewhere.sessionId }),
        Code.NotFound,
        "QUERY-SFeaa",
      );
      assert.equal((await self.users.getUserByID({ userId: ada.userId })).user?.userId, ada.userId);

      // Sign-in no longer offers OTP SMS.
      const methods = await login.users.listAuthenticationMethodTypes({ userId: ada.userId });
      assert.deepEqual(methods.authMethodTypes, [AuthenticationMethodType.PASSWORD]);
      await expectCode(
        login.sessions.createSession({
          checks: { user: byId(ada.userId), password: { password } },
          challenges: { otpSms: { returnCode: true } },
        }),
        Code.FailedPrecondition,
        "COMMAND-BJ2g3",
      );
      // With no second factor left, password and user are enough to act as the user.
      const plain = await login.sessions.createSession({
        checks: { user: byId(ada.userId), password: { password } },
      });
      await clients(server.url, plain.sessionToken).users.getUserByID({ userId: ada.userId });
    });

    it("ends a sign-in in progress when its OTP SMS is removed", async () => {
      const ada = await person();
      const flow = signIn(server, login);
      const started = await flow.start(ada.username, { returnCode: true });
      await admin.users.removeOTPSMS({ userId: ada.userId });
      await expectCode(
        flow.finish(started.sessionId, started.code),
        Code.FailedPrecondition,
        "COMMAND-Hewfq",
      );
    });

    it("refuses a reused code and an expired one", async () => {
      const ada = await person();
      const flow = signIn(server, login);
      const started = await flow.start(ada.username, { returnCode: true });
      await flow.finish(started.sessionId, started.code);
      await expectCode(
        flow.finish(started.sessionId, started.code),
        Code.FailedPrecondition,
        "COMMAND-S34gh",
      );

      const late = await flow.start(ada.username, { returnCode: true });
      clock.advance(5 * 60 * 1000 + 1000);
      await expectCode(flow.finish(late.sessionId, late.code), Code.FailedPrecondition, "CODE-QvUQ4P");
      assert.equal((await userEvents(ada.userId)).at(-1), "user.human.mfa.otp.sms.check.failed");
    });

    it("locks the user at the limit of wrong codes until an administrator unlocks", async () => {
      const ada = await person();
      const flow = signIn(server, login);
      const started = await flow.start(ada.username, { returnCode: true });
      const wrong = started.code === "00000000" ? "11111111" : "00000000";
      for (let i = 0; i < 3; i++)
        await expectCode(flow.finish(started.sessionId, wrong), Code.InvalidArgument, "CODE-woT0xc");
      assert.deepEqual((await userEvents(ada.userId)).slice(-2), [
        "user.human.mfa.otp.sms.check.failed",
        "user.locked",
      ]);
      // Even the right code is refused now, and so is a new sign-in.
      await expectCode(
        flow.finish(started.sessionId, started.code),
        Code.FailedPrecondition,
        "COMMAND-JLK35",
      );
      await expectCode(
        login.sessions.createSession({ checks: { user: byLoginName(ada.username), password: { password } } }),
        Code.FailedPrecondition,
        "SESSION-Gj4ko",
      );
      const locked = await admin.users.getUserByID({ userId: ada.userId });
      assert.equal(locked.user?.state, 4, "USER_STATE_LOCKED");

      await admin.users.unlockUser({ userId: ada.userId });
      const again = await flow.start(ada.username, { returnCode: true });
      const token = await flow.finish(again.sessionId, again.code);
      await clients(server.url, token).users.getUserByID({ userId: ada.userId });
    });

    it("locks the user at the limit of wrong passwords", async () => {
      const ada = await person();
      const session = await login.sessions.createSession({ checks: { user: byId(ada.userId) } });
      for (let i = 0; i < 3; i++)
        await expectCode(
          login.sessions.setSession({
            sessionId: session.sessionId,
            checks: { password: { password: "nope" } },
          }),
          Code.InvalidArgument,
          "COMMAND-3M0fs",
        );
      await expectCode(
        login.sessions.setSession({ sessionId: session.sessionId, checks: { password: { password } } }),
        Code.FailedPrecondition,
        "COMMAND-JLK35",
      );
      assert.equal((await userEvents(ada.userId)).at(-1), "user.locked");
    });

    it("ends a session on DeleteSession and when its lifetime is over", async () => {
      const ada = await person();
      const flow = signIn(server, login);
      const started = await flow.start(ada.username, { returnCode: true });
      const token = await flow.finish(started.sessionId, started.code);
      const deleted = await login.sessions.deleteSession({
        sessionId: started.sessionId,
        sessionToken: token,
      });
      assert.ok(deleted.details?.changeDate);
      await expectCode(
        clients(server.url, token).users.removeOTPSMS({ userId: ada.userId }),
        Code.Unauthenticated,
        "AUTH-7fs1e",
      );
      await expectCode(
        login.sessions.setSession({ sessionId: started.sessionId, checks: { otpSms: { code: "1" } } }),
        Code.FailedPrecondition,
        "COMMAND-Hewfq",
      );

      const short = await flow.start(ada.username, { returnCode: true, lifetimeSeconds: 60 });
      const shortToken = await flow.finish(short.sessionId, short.code);
      const { session } = await login.sessions.getSession({ sessionId: short.sessionId });
      assert.ok(session?.expirationDate);
      await clients(server.url, shortToken).users.getUserByID({ userId: ada.userId });
      clock.advance(61_000);
      await expectCode(
        clients(server.url, shortToken).users.getUserByID({ userId: ada.userId }),
        Code.Unauthenticated,
        "AUTH-7fs1e",
      );
      await expectCode(
        login.sessions.setSession({ sessionId: short.sessionId, checks: { password: { password } } }),
        Code.FailedPrecondition,
        "COMMAND-Hkl3d",
      );
    });

    it("lets only callers with session.write sign people in, and shows sessions to their user", async () => {
      const ada = await person();
      const nobody = await callerWith(admin, null, [], ada.orgId);
      await expectCode(
        clients(server.url, nobody.token).sessions.createSession({ checks: { user: byId(ada.userId) } }),
        Code.PermissionDenied,
        "AUTH-AWfge",
      );
      const flow = signIn(server, login);
      const started = await flow.start(ada.username, { returnCode: true });
      const token = await flow.finish(started.sessionId, started.code);
      await expectCode(
        clients(server.url, nobody.token).sessions.getSession({ sessionId: started.sessionId }),
        Code.PermissionDenied,
      );
      await expectCode(
        login.sessions.getSession({ sessionId: started.sessionId, sessionToken: "wrong.token" }),
        Code.PermissionDenied,
        "COMMAND-sGr42",
      );
      const own = await clients(server.url, token).sessions.listSessions({});
      assert.deepEqual(
        own.sessions.map((s) => s.id),
        [started.sessionId],
      );
      const listed = await login.sessions.listSessions({
        queries: [{ query: { case: "userIdQuery", value: { id: ada.userId } } }],
      });
      assert.equal(listed.details?.totalResult, 1n);
      const created = await rest(server.url, "POST", "/v2/sessions", {
        token: server.adminToken,
        body: { checks: { user: { userId: ada.userId } } },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const got = await rest(server.url, "GET", `/v2/sessions/${created.body.sessionId}`, {
        token: server.adminToken,
      });
      assert.equal(got.body.session.factors.user.id, ada.userId);
    });
  });

  describe(`with sessions kept when a factor is removed (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let login: Clients;
    before(async () => {
      server = await startTestServer(db, { env: { LATCHKEY_END_SESSIONS_ON_FACTOR_REMOVAL: "false" } });
      admin = clients(server.url, server.adminToken);
      const orgId = (await humanUser(admin)).orgId;
      const client = await callerWith(admin, { instance: true }, ["IAM_LOGIN_CLIENT"], orgId);
      login = clients(server.url, client.token);
    });
    after(() => server.stop());

    it("voids codes issued before OTP SMS was removed, even once it is added again", async () => {
      const ada = await humanUser(admin, { password });
      await admin.users.addOTPSMS({ userId: ada.userId });
      const flow = signIn(server, login);
      const started = await flow.start(ada.username, { returnCode: true });
      await admin.users.removeOTPSMS({ userId: ada.userId });
      await expectCode(
        flow.finish(started.sessionId, started.code),
        Code.FailedPrecondition,
        "COMMAND-d2r52",
      );
      await admin.users.addOTPSMS({ userId: ada.userId });
      await expectCode(
        flow.finish(started.sessionId, started.code),
        Code.FailedPrecondition,
        "COMMAND-S34gh",
      );
      // A new challenge on the same session works.
      const again = await login.sessions.setSession({
        sessionId: started.sessionId,
        challenges: { otpSms: { returnCode: true } },
      });
      await flow.finish(started.sessionId, again.challenges?.otpSms ?? "");
    });
  });
}
