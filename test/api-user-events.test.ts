import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Clients, clients, rest } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser, newOrg } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const eventsPath = (userId: string, limit?: string) =>
  `/ui/api/users/${encodeURIComponent(userId)}/events${limit === undefined ? "" : `?limit=${limit}`}`;

for (const db of databaseKinds) {
  describe(`a user's recent events for the console (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let orgA: string;
    let orgB: string;
    let adminName: string;
    before(async () => {
      server = await startTestServer(db);
      admin = clients(server.url, server.adminToken);
      orgA = await newOrg(admin);
      orgB = await newOrg(admin);
      const app = server.running.app;
      const [first] = await app.deps.store.readLog(app.instanceId, 0, 1);
      const adminUser = await app.deps.store.getUser(app.instanceId, first!.creator);
      adminName = adminUser!.username;
    });
    after(() => server.stop());

    it("lists type, time and who, newest first, and nothing of the payloads", async () => {
      const user = await humanUser(admin, { orgId: orgA, verified: false });
      const owner = await callerWith(admin, { orgId: orgA }, ["ORG_OWNER"], orgA);
      const ownerName = (await admin.users.getUserByID({ userId: owner.userId })).user!.username;
      const code = await admin.users.resendPhoneCode({
        userId: user.userId,
        verification: { case: "returnCode", value: {} },
      });
      await clients(server.url, owner.token).users.verifyPhone({
        userId: user.userId,
        verificationCode: code.verificationCode!,
      });
      await admin.users.addOTPSMS({ userId: user.userId });
      await clients(server.url, owner.token).users.removeOTPSMS({ userId: user.userId });
      // The removal sends the number a notice, whose delivery is recorded on the user too.
      await server.smsIdle();

      const r = await rest(server.url, "GET", eventsPath(user.userId), { token: server.adminToken });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const stored = await server.running.app.deps.store.loadEvents(
        server.running.app.instanceId,
        { type: "user", id: user.userId },
        0,
      );
      assert.deepEqual(
        r.body.events,
        [...stored].reverse().map((e) => ({
          sequence: e.sequence,
          type: e.type,
          creationDate: e.createdAt.toISOString(),
          creator: {
            userId: e.creator,
            username:
              e.creator === owner.userId ? ownerName : e.creator === "NOTIFICATION" ? null : adminName,
          },
        })),
      );
      assert.deepEqual(
        r.body.events
          .slice(0, 3)
          .map((e: { type: string; creator: { username: string } }) => [e.type, e.creator.username]),
        [
          ["user.human.sms.sent", null],
          ["user.human.mfa.otp.sms.removed", ownerName],
          ["user.human.mfa.otp.sms.added", adminName],
        ],
      );
      // The code hashes in user.human.phone.code.added stay in the log.
      const hashes = stored.flatMap((e) =>
        e.payload && "codeHash" in e.payload ? [String(e.payload.codeHash)] : [],
      );
      assert.equal(hashes.length, 2);
      const text = JSON.stringify(r.body);
      for (const h of hashes) assert.ok(!text.includes(h));
      assert.ok(!text.includes("payload"));

      const two = await rest(server.url, "GET", eventsPath(user.userId, "2"), { token: server.adminToken });
      assert.deepEqual(two.body.events, r.body.events.slice(0, 2));
    });

    it("answers as the API does: 401, 403 before 404, and the self rule", async () => {
      const inA = await humanUser(admin, { orgId: orgA });
      const inB = await humanUser(admin, { orgId: orgB });
      const viewerOfA = await callerWith(admin, { orgId: orgA }, ["ORG_OWNER_VIEWER"], orgA);
      const nobody = await callerWith(admin, null, [], orgA);
      const get = (userId: string, token?: string) => rest(server.url, "GET", eventsPath(userId), { token });
      const expect = async (
        p: Promise<{ status: number; body: { code: number; details: { id: string }[] } }>,
        status: number,
        id?: string,
      ) => {
        const r = await p;
        assert.equal(r.status, status, JSON.stringify(r.body));
        if (id) assert.equal(r.body.details[0]?.id, id);
      };

      await expect(get(inA.userId), 401);
      await expect(get(inA.userId, "not-a-token"), 401, "AUTH-7fs1e");
      await expect(get(inA.userId, nobody.token), 403, "AUTH-AWfge");
      await expect(get("404404", nobody.token), 403, "AUTH-AWfge");
      await expect(get(inB.userId, viewerOfA.token), 403, "AUTH-AWfge");
      await expect(get("404404", viewerOfA.token), 404, "COMMAND-4g3xq");
      await expect(get(inA.userId, viewerOfA.token), 200);
      // A user may read its own history, as it may read itself with GetUserByID.
      await expect(get(nobody.userId, nobody.token), 200);

      await admin.users.deleteUser({ userId: inA.userId });
      await expect(get(inA.userId, server.adminToken), 404, "COMMAND-4g3xq");
    });

    it("checks its limit, takes only GET and is never cached", async () => {
      const user = await humanUser(admin);
      for (const bad of ["0", "101", "ten", "-1", "2.5"]) {
        const r = await rest(server.url, "GET", eventsPath(user.userId, bad), { token: server.adminToken });
        assert.equal(r.status, 400, bad);
        assert.equal(r.body.details[0].id, "LK-EVENTS-LIMIT");
      }
      const posted = await rest(server.url, "POST", eventsPath(user.userId), {
        token: server.adminToken,
        body: {},
      });
      assert.equal(posted.status, 405);
      const res = await fetch(`${server.url}${eventsPath(user.userId, "100")}`, {
        headers: { authorization: `Bearer ${server.adminToken}` },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.equal(((await res.json()) as { events: unknown[] }).events.length, 3);
      const elsewhere = await rest(server.url, "GET", "/ui/api/users", { token: server.adminToken });
      assert.equal(elsewhere.status, 404);
    });
  });
}
