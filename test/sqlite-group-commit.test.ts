// SQLite commits the appends of one turn of the event loop together. When the SMS worker's
// record of a message (a background append) and a caller's change were decided on the same
// state of a user, the caller's must be the one written: the worker plans again, while the
// caller would otherwise wait a whole further commit for its answer.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { newId } from "../src/app/ids.ts";
import { ConcurrencyError, type Store } from "../src/app/ports.ts";
import * as user from "../src/domain/user/decide.ts";
import { emptyUser } from "../src/domain/user/state.ts";
import { openSqliteStore } from "../src/store/sqlite/store.ts";
import { addHuman, change, instanceId, orgId } from "./support/user-appends.ts";

const outcome = (r: PromiseSettledResult<unknown>) =>
  r.status === "fulfilled" ? "written" : r.reason instanceof ConcurrencyError ? "conflict" : String(r.reason);

describe("SQLite group commit", () => {
  let dir: string;
  let store: Store;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "latchkey-group-"));
    store = openSqliteStore(join(dir, "latchkey.db"));
  });

  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes a caller's change before a background append decided on the same state", async () => {
    const created = change({ ...emptyUser(newId()), orgId }, addHuman("raced"));
    await store.append(created.request);
    const worker = change(created.after, user.addOtpSms);
    const caller = change(created.after, user.removePhone);

    // The worker's append is sent first, in the same turn.
    const results = await Promise.allSettled([
      store.append({ ...worker.request, background: true }),
      store.append(caller.request),
    ]);

    assert.deepEqual(results.map(outcome), ["conflict", "written"]);
    assert.deepEqual(await store.getUser(instanceId, created.after.id), caller.after);
  });

  it("keeps the order in which appends were sent when none is in the background", async () => {
    const created = change({ ...emptyUser(newId()), orgId }, addHuman("ordered"));
    await store.append(created.request);
    const first = change(created.after, user.addOtpSms);
    const second = change(created.after, user.removePhone);

    const results = await Promise.allSettled([store.append(first.request), store.append(second.request)]);

    assert.deepEqual(results.map(outcome), ["written", "conflict"]);
    assert.deepEqual(await store.getUser(instanceId, created.after.id), first.after);
  });
});
