// How the PostgreSQL store groups statements into round trips. The store's own behaviour under
// batching (a failing append takes nothing else with it, on a real server) is in the store
// contract; this pins the grouping itself against a stand-in connection that answers each
// statement with its own text, so that what went in which round trip can be seen.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StoreUnavailable } from "../src/app/ports.ts";
import { Batcher } from "../src/store/postgres/batcher.ts";
import type { Statement, StatementResult } from "../src/store/postgres/pipeline.ts";

const st = (text: string): Statement => ({ text, values: [] });
const texts = (results: StatementResult[]) => results.map((r) => r.rows[0]?.[0]);

// A connection that answers after a delay, refusing any round trip that holds a statement in
// `refuse` the way PostgreSQL does (the whole pipeline rolled back), and records each round trip.
function connection(options: { refuse?: Set<string>; fail?: Error; delayMs?: number } = {}) {
  const trips: string[][] = [];
  let open = 0;
  let mostOpen = 0;
  const send = async (statements: readonly Statement[]): Promise<StatementResult[]> => {
    trips.push(statements.map((s) => s.text));
    open++;
    mostOpen = Math.max(mostOpen, open);
    await new Promise((resolve) => setTimeout(resolve, options.delayMs ?? 5));
    open--;
    if (options.fail) throw options.fail;
    const refused = statements.find((s) => options.refuse?.has(s.text));
    if (refused) throw new Error(`refused ${refused.text}`);
    return statements.map((s) => ({ rows: [[s.text]], fields: null }));
  };
  return { send, trips, mostOpen: () => mostOpen };
}

describe("PostgreSQL batching", () => {
  it("sends what is asked in one turn as one round trip, each caller getting its own answers", async () => {
    const c = connection();
    const batcher = new Batcher(c.send, { inFlight: 1, statements: 100, maxWaitMs: 1000 });
    const answers = await Promise.all([
      batcher.run([st("a1"), st("a2")]),
      batcher.run([st("b1")]),
      batcher.run([st("c1"), st("c2"), st("c3")]),
    ]);
    assert.deepEqual(c.trips, [["a1", "a2", "b1", "c1", "c2", "c3"]]);
    assert.deepEqual(answers.map(texts), [["a1", "a2"], ["b1"], ["c1", "c2", "c3"]]);
  });

  // A lock statement whose text names the keys, so that the round trips show what was locked.
  const lock = (keys: readonly string[]): Statement => st(`lock ${keys.join(",")}`);

  // The lock statement orders the keys itself (locks.ts); the batch hands it every unit's keys.
  it("takes every unit's locks first, then sends the units in the order of what each writes first", async () => {
    const c = connection();
    const batcher = new Batcher(c.send, { inFlight: 1, statements: 100, maxWaitMs: 1000, lock });
    const answers = await Promise.all([
      batcher.run([st("c1"), st("c2")], ["user/c", "session/s"]),
      batcher.run([st("a1")], ["user/a"]),
      batcher.run([st("b1")], ["user/b"]),
      batcher.run([st("n1")]),
    ]);
    assert.deepEqual(c.trips, [["lock user/a,user/b,user/c,session/s", "n1", "a1", "b1", "c1", "c2"]]);
    assert.deepEqual(answers.map(texts), [["c1", "c2"], ["a1"], ["b1"], ["n1"]]);
  });

  it("sends no lock statement for a batch that names no locks", async () => {
    const c = connection();
    const batcher = new Batcher(c.send, { inFlight: 1, statements: 100, maxWaitMs: 1000, lock });
    await Promise.all([batcher.run([st("a")]), batcher.run([st("b")])]);
    assert.deepEqual(c.trips, [["a", "b"]]);
  });

  it("closes a batch at its statement limit, never splitting a caller's statements", async () => {
    const c = connection();
    const batcher = new Batcher(c.send, { inFlight: 10, statements: 3, maxWaitMs: 1000 });
    const answers = await Promise.all([
      batcher.run([st("a1"), st("a2")]),
      batcher.run([st("b1"), st("b2")]),
      batcher.run([st("c1"), st("c2"), st("c3"), st("c4")]),
      batcher.run([st("d1")]),
    ]);
    assert.deepEqual(c.trips, [["a1", "a2"], ["b1", "b2"], ["c1", "c2", "c3", "c4"], ["d1"]]);
    assert.deepEqual(answers.map(texts), [["a1", "a2"], ["b1", "b2"], ["c1", "c2", "c3", "c4"], ["d1"]]);
  });

  it("keeps at most its limit of batches on their way, gathering the rest meanwhile", async () => {
    const c = connection({ delayMs: 20 });
    const batcher = new Batcher(c.send, { inFlight: 1, statements: 1, maxWaitMs: 1000 });
    await Promise.all(["a", "b", "c", "d"].map((t) => batcher.run([st(t)])));
    assert.equal(c.mostOpen(), 1);
    assert.deepEqual(c.trips, [["a"], ["b"], ["c"], ["d"]]);

    const wide = connection({ delayMs: 20 });
    const two = new Batcher(wide.send, { inFlight: 2, statements: 1, maxWaitMs: 1000 });
    await Promise.all(["a", "b", "c", "d"].map((t) => two.run([st(t)])));
    assert.equal(wide.mostOpen(), 2);
  });

  it("asks again alone for each caller when the database refuses a batch, so one failure stays its own", async () => {
    const c = connection({ refuse: new Set(["bad"]) });
    const batcher = new Batcher(c.send, { inFlight: 1, statements: 100, maxWaitMs: 1000 });
    const results = await Promise.allSettled([
      batcher.run([st("a")]),
      batcher.run([st("x"), st("bad")]),
      batcher.run([st("b")]),
    ]);
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? texts(r.value) : String(r.reason))),
      [["a"], "Error: refused bad", ["b"]],
    );
    assert.deepEqual(c.trips, [["a", "x", "bad", "b"], ["a"], ["x", "bad"], ["b"]]);
  });

  it("takes a unit's own locks again when it is asked alone after a refused batch", async () => {
    const c = connection({ refuse: new Set(["bad"]) });
    const batcher = new Batcher(c.send, { inFlight: 1, statements: 100, maxWaitMs: 1000, lock });
    const results = await Promise.allSettled([
      batcher.run([st("a")], ["user/a"]),
      batcher.run([st("bad")], ["user/b"]),
      batcher.run([st("n")]),
    ]);
    assert.deepEqual(
      results.map((r) => (r.status === "fulfilled" ? texts(r.value) : String(r.reason))),
      [["a"], "Error: refused bad", ["n"]],
    );
    assert.deepEqual(c.trips, [
      ["lock user/a,user/b", "n", "a", "bad"],
      ["n"],
      ["lock user/a", "a"],
      ["lock user/b", "bad"],
    ]);
  });

  it("does not send a batch again when its fate is unknown: every caller hears unavailable", async () => {
    const lost = new StoreUnavailable("PostgreSQL is unreachable");
    const c = connection({ fail: lost });
    const batcher = new Batcher(c.send, { inFlight: 1, statements: 100, maxWaitMs: 1000 });
    const results = await Promise.allSettled([batcher.run([st("a")]), batcher.run([st("b")])]);
    assert.deepEqual(
      results.map((r) => r.status === "rejected" && r.reason === lost),
      [true, true],
    );
    assert.equal(c.trips.length, 1, "an append that may have committed is never sent twice");
  });

  it("answers unavailable, without sending it, what waited too long behind a slow batch", async () => {
    const c = connection({ delayMs: 120 });
    const batcher = new Batcher(c.send, { inFlight: 1, statements: 100, maxWaitMs: 50 });
    const slow = batcher.run([st("slow")]);
    await new Promise((resolve) => setImmediate(resolve));
    const stuck = batcher.run([st("stuck")]);
    await assert.rejects(stuck, StoreUnavailable);
    assert.deepEqual(texts(await slow), ["slow"]);
    assert.deepEqual(c.trips, [["slow"]]);
    // A caller that comes later is served as usual.
    assert.deepEqual(texts(await batcher.run([st("later")])), ["later"]);
  });

  it("goes on after a failed batch with what waited behind it", async () => {
    let first = true;
    const trips: string[][] = [];
    const batcher = new Batcher(
      async (statements) => {
        trips.push(statements.map((s) => s.text));
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (first) {
          first = false;
          throw new StoreUnavailable("gone");
        }
        return statements.map((s) => ({ rows: [[s.text]], fields: null }));
      },
      { inFlight: 1, statements: 100, maxWaitMs: 1000 },
    );
    const early = batcher.run([st("a")]);
    await new Promise((resolve) => setImmediate(resolve));
    const late = batcher.run([st("b")]);
    await assert.rejects(early, StoreUnavailable);
    assert.deepEqual(texts(await late), ["b"]);
    assert.deepEqual(trips, [["a"], ["b"]]);
  });
});
