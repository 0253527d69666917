// A PostgreSQL store analyzes each of its tables once it has grown and still has no planner
// statistics, so that plans made on an empty database are replaced, whether or not autovacuum
// runs on the server (it is off on the machine these tests were written on).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import type { Store } from "../src/app/ports.ts";
import { openPostgresStore } from "../src/store/postgres/store.ts";
import { eventually } from "./support/assertions.ts";
import { databaseKinds, freshDatabase, type TestDatabase } from "./support/databases.ts";

if (databaseKinds.includes("postgres")) {
  describe("PostgreSQL planner statistics", () => {
    let db: TestDatabase;
    let url: string;
    let store: Store;
    let admin: pg.Client;

    before(async () => {
      db = await freshDatabase("postgres");
      if (db.config.kind !== "postgres") throw new Error("expected a PostgreSQL database");
      url = db.config.url;
      store = await openPostgresStore(
        { url, poolSize: 2, statementTimeoutMs: 5000, connectTimeoutMs: 3000 },
        { statisticsEveryMs: 50 },
      );
      admin = new pg.Client({ connectionString: url });
      await admin.connect();
    });

    after(async () => {
      await store?.close();
      await admin?.end();
      await db?.drop();
    });

    const analyzed = async (table: string) => {
      const { rows } = await admin.query<{ analyzed: boolean }>(
        `SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL AS analyzed
           FROM pg_stat_user_tables WHERE relname = $1`,
        [table],
      );
      return rows[0]?.analyzed ?? false;
    };

    let users = 0;
    const appendEvents = async (count: number) => {
      for (let n = 0; n < count; n++) {
        const i = users++;
        await store.append({
          instanceId: "i1",
          creator: "c1",
          createdAt: new Date(),
          writes: [
            {
              ref: { type: "user", id: `u${i}` },
              owner: "o1",
              expectedSequence: 0,
              events: [{ type: "user.human.added", payload: null }],
            },
          ],
          readModel: [],
        });
      }
    };

    it("leaves a table without statistics while it holds only a few rows", async () => {
      await appendEvents(20);
      // Several looks of the keeper go by.
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(await analyzed("events"), false);
    });

    it("analyzes the table once it has grown, and the planner then knows its size", async () => {
      await appendEvents(200);
      await eventually(() => analyzed("events"), "the events table analyzed");
      const { rows } = await admin.query<{ reltuples: number }>(
        "SELECT reltuples FROM pg_class WHERE relname = 'events'",
      );
      assert.ok(Number(rows[0]?.reltuples) >= 200, `reltuples ${rows[0]?.reltuples}`);
      // Tables nobody wrote to are left as they are.
      assert.equal(await analyzed("sessions"), false);
    });
  });
}
