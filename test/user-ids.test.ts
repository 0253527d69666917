import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, type ConnectError } from "@connectrpc/connect";
import { newId } from "../src/app/ids.ts";
import { clients } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { humanUser } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

describe("user ids drawn by the server", () => {
  it("never repeats within one process, even for many ids in the same millisecond", () => {
    const at = Date.now();
    const ids = Array.from({ length: 100_000 }, () => newId(at));
    assert.equal(new Set(ids).size, ids.length);
    // Still ZITADEL's shape: a decimal that sorts by creation time.
    assert.match(ids[0]!, /^[1-9][0-9]{15,18}$/);
    assert.ok(BigInt(newId(at + 1)) >> 22n > BigInt(ids[0]!) >> 22n);
  });

  for (const db of databaseKinds) {
    describe(`on ${db}`, () => {
      let server: TestServer;
      // The first draws repeat ids that another node could have drawn too: those of users
      // that exist already.
      const repeats: string[] = [];
      before(async () => {
        server = await startTestServer(db, { newId: () => repeats.shift() ?? newId() });
      });
      after(() => server.stop());

      it("creates the user under a fresh id when the one it drew is taken, not 'already exists'", async () => {
        const admin = clients(server.url, server.adminToken, "connect");
        const first = await humanUser(admin);
        const machine = await admin.users.createUser({
          organizationId: first.orgId,
          userType: { case: "machine", value: { name: "robot" } },
        });
        repeats.push(first.userId, machine.id);
        const second = await humanUser(admin);
        assert.notEqual(second.userId, first.userId);
        assert.equal(second.sequence, 3n, "a new user's own events, not the taken user's");
        const taken = await admin.users.getUserByID({ userId: first.userId });
        assert.equal(taken.user?.username, first.username);
      });

      it("still answers AlreadyExists when the caller itself names a taken id", async () => {
        const admin = clients(server.url, server.adminToken, "connect");
        const first = await humanUser(admin);
        await assert.rejects(
          admin.users.addHumanUser({
            userId: first.userId,
            username: `other-${first.username}`,
            profile: { givenName: "A", familyName: "B" },
            email: { email: `other-${first.username}@example.com` },
          }),
          (err: ConnectError) => err.code === Code.AlreadyExists,
        );
      });
    });
  }
});
