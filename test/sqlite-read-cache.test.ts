// The SQLite store keeps users and tokens it read or wrote in memory. What it returns must still
// be the file's truth: writes through another connection (a second process, the CLI) are seen
// from the next turn of the event loop on, and a write that fails leaves nothing behind.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { newId } from "../src/app/ids.ts";
import { ConcurrencyError, type Store } from "../src/app/ports.ts";
import { hashToken, newToken } from "../src/app/secrets.ts";
import * as user from "../src/domain/user/decide.ts";
import { emptyUser, type UserState } from "../src/domain/user/state.ts";
import { openSqliteStore } from "../src/store/sqlite/store.ts";
import { addHuman, change, instanceId, orgId } from "./support/user-appends.ts";

describe("SQLite store's memory of what it read", () => {
  let dir: string;
  let server: Store;
  let other: Store;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "latchkey-cache-"));
    const path = join(dir, "latchkey.db");
    server = openSqliteStore(path);
    other = openSqliteStore(path);
  });

  after(async () => {
    await server?.close();
    await other?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function newUser(username: string, decide = addHuman(username)): Promise<UserState> {
    const { request, after } = change({ ...emptyUser(newId()), orgId }, decide);
    await server.append(request);
    return after;
  }

  it("sees a user changed through another connection", async () => {
    const u = await newUser("ada");
    assert.equal((await server.loadUser(instanceId, u.id)).snapshot?.otpSms, false);
    const { request } = change(u, user.addOtpSms);
    await other.append(request);
    await nextTurn();
    const { snapshot, tail } = await server.loadUser(instanceId, u.id);
    assert.equal(snapshot?.otpSms, true);
    assert.equal(snapshot?.sequence, u.sequence + 1);
    assert.deepEqual(tail, []);
    assert.equal((await server.getUser(instanceId, u.id))?.otpSms, true);
  });

  it("stops accepting a token removed through another connection", async () => {
    const u = await newUser("grace", (s) =>
      user.addMachine(s, { username: "grace", name: "Grace", description: "cache test" }),
    );
    const token = newToken();
    const tokenId = newId();
    const added = change(u, (s) =>
      user.addPersonalAccessToken(s, {
        tokenId,
        tokenHash: hashToken(token),
        expiresAt: null,
        now: new Date(),
      }),
    );
    await server.append(added.request);
    assert.equal((await server.findTokenHolder(instanceId, hashToken(token)))?.token.tokenId, tokenId);
    const removed = change(added.after, (s) => user.removePersonalAccessToken(s, tokenId));
    await other.append(removed.request);
    await nextTurn();
    assert.equal(await server.findTokenHolder(instanceId, hashToken(token)), null);
  });

  it("keeps nothing of a write that failed", async () => {
    const u = await newUser("alan");
    await server.loadUser(instanceId, u.id);
    // Decided on a sequence the user has moved past: the append is refused.
    const stale = change(u, user.addOtpSms, u.sequence - 1);
    await assert.rejects(server.append(stale.request), ConcurrencyError);
    const { snapshot } = await server.loadUser(instanceId, u.id);
    assert.equal(snapshot?.otpSms, false);
    assert.equal(snapshot?.sequence, u.sequence);
  });
});
