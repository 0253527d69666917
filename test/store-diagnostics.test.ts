// What the stores publish on node:diagnostics_channel for tools that watch them (the benchmark's
// --trace): one message per SQLite group commit and per PostgreSQL batch answered, saying how many
// writes or statements went together and how long they took.
import assert from "node:assert/strict";
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { AppendRequest } from "../src/app/ports.ts";
import { Batcher, type BatchMessage } from "../src/store/postgres/batcher.ts";
import type { Statement, StatementResult } from "../src/store/postgres/pipeline.ts";
import type { FlushMessage } from "../src/store/sqlite/group-commit.ts";
import { openSqliteStore } from "../src/store/sqlite/store.ts";

function collect<T>(name: string) {
  const seen: T[] = [];
  const listener = (message: unknown) => seen.push(message as T);
  subscribe(name, listener);
  return { seen, stop: () => unsubscribe(name, listener) };
}

const appendTo = (id: string): AppendRequest => ({
  instanceId: "inst",
  creator: "creator",
  createdAt: new Date(),
  writes: [
    {
      ref: { type: "user", id },
      owner: "org",
      expectedSequence: 0,
      events: [{ type: "user.human.added", payload: null }],
    },
  ],
  readModel: [],
});

describe("what the stores publish for tools that watch them", () => {
  it("SQLite: one message per group commit, counting the writes it carried", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lk-diag-"));
    const store = openSqliteStore(join(dir, "db.sqlite"));
    const flushes = collect<FlushMessage>("latchkey:sqlite:flush");
    try {
      await Promise.all([store.append(appendTo("a")), store.append(appendTo("b"))]);
      await store.append(appendTo("c"));
      assert.deepEqual(
        flushes.seen.map((f) => f.writes),
        [2, 1],
      );
      for (const f of flushes.seen) assert.ok(f.commitMs >= 0 && f.flushMs >= f.commitMs, JSON.stringify(f));
    } finally {
      flushes.stop();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("PostgreSQL: one message per batch answered, naming the batcher", async () => {
    const send = async (statements: readonly Statement[]): Promise<StatementResult[]> => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      return statements.map(() => ({ rows: [], fields: null }));
    };
    const batcher = new Batcher(send, { name: "appends", inFlight: 1, statements: 100, maxWaitMs: 1000 });
    const batches = collect<BatchMessage>("latchkey:postgres:batch");
    const st = (text: string): Statement => ({ text, values: [] });
    try {
      await Promise.all([batcher.run([st("a1"), st("a2")]), batcher.run([st("b1")])]);
      assert.equal(batches.seen.length, 1);
      const [b] = batches.seen;
      assert.equal(b?.name, "appends");
      assert.equal(b?.units, 2);
      assert.equal(b?.statements, 3);
      assert.ok((b?.waitedMs ?? -1) >= 0);
      assert.ok((b?.roundTripMs ?? 0) >= 15, `round trip ${b?.roundTripMs} ms for a 20 ms answer`);
    } finally {
      batches.stop();
    }
  });
});
