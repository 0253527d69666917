// Two nodes append to the same users at the same moment. Each node sends the appends of one turn
// as one transaction (batcher.ts), so two such transactions that lock the same rows in opposite
// orders would deadlock: each call then waits for PostgreSQL's deadlock check (a second by
// default), or fails with Unavailable when the statement timeout comes first. Every batch first
// takes the locks of all the aggregates it writes, sorted, so one batch waits for the other
// instead, whatever order the appends in it write their aggregates in.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pg from "pg";
import { ConcurrencyError, type Store } from "../src/app/ports.ts";
import { openStore } from "../src/store/open.ts";
import { lockStatement } from "../src/store/postgres/locks.ts";
import { databaseKinds, freshDatabase } from "./support/databases.ts";

const instanceId = "lock-order";
const users = ["user-a", "user-b", "user-c", "user-d"];

// The next event of each user, in one append, written as the node that read them all at
// `sequence` would write it, in the order given.
function touch(store: Store, userIds: readonly string[], sequence: number): Promise<"stored" | "lost"> {
  return store
    .append({
      instanceId,
      creator: "test",
      createdAt: new Date(),
      writes: userIds.map((id) => ({
        ref: { type: "user" as const, id },
        owner: "org",
        expectedSequence: sequence,
        events: [{ type: "user.test.touched", payload: null }],
      })),
      readModel: [],
    })
    .then(
      () => "stored" as const,
      (err: unknown) => {
        if (err instanceof ConcurrencyError) return "lost" as const;
        throw err;
      },
    );
}

// PostgreSQL counts a database's deadlocks as its backends report them, at the latest when they
// exit; so this waits for the nodes' connections to be gone before reading the count.
async function deadlocksIn(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (let i = 0; i < 50; i++) {
      const { rows } = await client.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
      );
      if (Number(rows[0]?.n) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await client.query("SELECT pg_stat_clear_snapshot()");
    const { rows } = await client.query<{ deadlocks: string }>(
      "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
    );
    return Number(rows[0]?.deadlocks);
  } finally {
    await client.end();
  }
}

// Two transactions that take the same locks in different orders can each hold one the other
// waits for. The race above rarely shows it for the lock statement alone (it takes its locks in
// microseconds), so the order it asks for is pinned here.
describe("the lock statement of an append", () => {
  const keysOf = (keys: string[]) => JSON.parse(String(lockStatement(keys).values[0])) as string[];

  it("asks for the same keys in the same order whatever order it is given, each once", () => {
    const keys = ["i/user/b", "i/session/s", "i/user/a", "i/user/b", "i/+41 79"];
    const sorted = ["i/+41 79", "i/session/s", "i/user/a", "i/user/b"];
    assert.deepEqual(keysOf(keys), sorted);
    assert.deepEqual(keysOf([...keys].reverse()), sorted);
  });

  it("orders by code unit, not by a locale's rules", () => {
    assert.deepEqual(keysOf(["i/user/é", "i/user/Z", "i/user/a"]), ["i/user/Z", "i/user/a", "i/user/é"]);
  });
});

if (databaseKinds.includes("postgres")) {
  describe("PostgreSQL appends from two nodes at once", () => {
    it("lock the same users in the same order: the race is lost, never deadlocked", async () => {
      const db = await freshDatabase("postgres");
      const url = (db.config as { url: string }).url;
      const nodes = [await openStore(db.config), await openStore(db.config)] as const;
      try {
        for (let round = 0; round < 20; round++) {
          // In one turn, each node writes every user's next event, the two nodes naming the
          // users in opposite orders: two batches racing for the same rows.
          const first = users.map((u) => touch(nodes[0], [u], round));
          const second = [...users].reverse().map((u) => touch(nodes[1], [u], round));
          const [a, b] = await Promise.all([Promise.all(first), Promise.all(second.reverse())]);
          for (const [i, user] of users.entries())
            assert.deepEqual([a[i], b[i]].sort(), ["lost", "stored"], `${user} in round ${round}`);
        }
        const log = await nodes[0].loadEvents(instanceId, { type: "user", id: users[0]! }, 0);
        assert.deepEqual(
          log.map((e) => e.sequence),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
      } finally {
        for (const node of nodes) await node.close();
      }
      assert.equal(await deadlocksIn(url), 0, "PostgreSQL found no deadlock between the nodes");
      await db.drop();
    });

    it("wait for each other when one append writes several aggregates in the opposite order of another's", async () => {
      const db = await freshDatabase("postgres");
      const url = (db.config as { url: string }).url;
      const nodes = [await openStore(db.config), await openStore(db.config)] as const;
      const many = Array.from({ length: 20 }, (_, i) => `many-${String(i).padStart(2, "0")}`);
      try {
        for (let round = 0; round < 10; round++) {
          const outcomes = await Promise.all([
            touch(nodes[0], many, round),
            touch(nodes[1], [...many].reverse(), round),
          ]);
          assert.deepEqual(outcomes.sort(), ["lost", "stored"], `round ${round}`);
        }
      } finally {
        for (const node of nodes) await node.close();
      }
      assert.equal(await deadlocksIn(url), 0, "PostgreSQL found no deadlock between the nodes");
      await db.drop();
    });
  });
}
