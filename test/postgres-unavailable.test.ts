// What a PostgreSQL-backed node does when its database is away: every call answers
// StoreUnavailable promptly (so the API says Unavailable / 503 and never shows SQL), nothing
// crashes the process, and the node works again by itself once the database is back.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { type Store, StoreUnavailable } from "../src/app/ports.ts";
import { loadConfig } from "../src/config.ts";
import { type Running, startLatchkey } from "../src/latchkey.ts";
import { jsonLogger } from "../src/log.ts";
import { openPostgresStore, type PostgresSettings } from "../src/store/postgres/store.ts";
import { databaseKinds, freshDatabase, type TestDatabase } from "./support/databases.ts";
import { freePort, Hop } from "./support/tcp-hop.ts";

const settings = (url: string, overrides: Partial<PostgresSettings> = {}): PostgresSettings => ({
  url,
  poolSize: 4,
  statementTimeoutMs: 300,
  connectTimeoutMs: 500,
  ...overrides,
});

async function unavailableWithin<T>(ms: number, call: () => Promise<T>): Promise<StoreUnavailable> {
  const started = performance.now();
  try {
    await call();
  } catch (err) {
    const took = performance.now() - started;
    assert.ok(err instanceof StoreUnavailable, `expected StoreUnavailable, got ${String(err)}`);
    assert.ok(took < ms, `answered after ${Math.round(took)} ms, more than ${ms} ms`);
    assert.doesNotMatch(err.message, /select|insert|relation|constraint/i);
    return err;
  }
  assert.fail("expected StoreUnavailable, but the call succeeded");
}

describe("PostgreSQL store without a reachable server", () => {
  it("answers StoreUnavailable at once when the port is closed", async () => {
    const port = await freePort();
    await unavailableWithin(2000, () =>
      openPostgresStore(settings(`postgres://postgres@127.0.0.1:${port}/latchkey`)),
    );
  });

  it("answers StoreUnavailable within the connect timeout when the server never answers", async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      await unavailableWithin(2000, () =>
        openPostgresStore(
          settings(`postgres://postgres@127.0.0.1:${port}/latchkey`, { connectTimeoutMs: 300 }),
        ),
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});

if (databaseKinds.includes("postgres")) {
  describe("PostgreSQL store when its server goes away and comes back", () => {
    const adminUrl = process.env.LATCHKEY_TEST_POSTGRES_ADMIN_URL!;
    let db: TestDatabase;
    let name: string;
    // Connected to the test database, to hold locks there; not named latchkey, so never ended.
    let admin: pg.Client;

    before(async () => {
      db = await freshDatabase("postgres");
      name = new URL((db.config as { url: string }).url).pathname.slice(1);
      admin = new pg.Client({ connectionString: (db.config as { url: string }).url });
      await admin.connect();
    });

    after(async () => {
      await admin?.end();
      await db?.drop();
    });

    const terminateBackends = () =>
      admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'latchkey'",
        [name],
      );

    async function withStore(
      url: string,
      run: (store: Store) => Promise<void>,
      over: Partial<PostgresSettings> = {},
    ) {
      const store = await openPostgresStore(settings(url, over));
      try {
        await run(store);
      } finally {
        await store.close();
      }
    }

    it("survives the server ending idle connections and carries on", async () => {
      await withStore((db.config as { url: string }).url, async (store) => {
        await Promise.all([store.ping(), store.ping(), store.getInstance()]);
        const { rowCount } = await terminateBackends();
        assert.ok((rowCount ?? 0) > 0, "the store had idle connections to end");
        // The pool learns of the ended connections from the server's notice, not at once.
        await new Promise((resolve) => setTimeout(resolve, 200));
        await store.ping();
        assert.equal(await store.getInstance(), null);
      });
    });

    it("answers StoreUnavailable when its connection is ended mid-statement, then recovers", async () => {
      await withStore(
        (db.config as { url: string }).url,
        async (store) => {
          await admin.query("BEGIN");
          await admin.query("LOCK TABLE instances IN ACCESS EXCLUSIVE MODE");
          try {
            // Checked from the start: the answer may come before the test waits for it.
            const waiting = unavailableWithin(3000, () => store.getInstance());
            // Let the read reach the server and block on the lock before ending its connection.
            await new Promise((resolve) => setTimeout(resolve, 200));
            await terminateBackends();
            await waiting;
          } finally {
            await admin.query("ROLLBACK");
          }
          assert.equal(await store.getInstance(), null);
        },
        { statementTimeoutMs: 10_000 },
      );
    });

    it("answers StoreUnavailable when a statement times out, and writes nothing", async () => {
      await withStore((db.config as { url: string }).url, async (store) => {
        await admin.query("BEGIN");
        await admin.query("LOCK TABLE orgs IN ACCESS EXCLUSIVE MODE");
        try {
          await unavailableWithin(1500, () => store.getOrg("i", "o"));
          await unavailableWithin(1500, () =>
            store.append({
              instanceId: "i",
              creator: "c",
              createdAt: new Date(),
              writes: [
                {
                  ref: { type: "org", id: "o" },
                  owner: "o",
                  expectedSequence: 0,
                  events: [{ type: "org.added", payload: { name: "Locked" } }],
                },
              ],
              readModel: [{ kind: "org.put", id: "o", name: "Locked", sequence: 1 }],
            }),
          );
        } finally {
          await admin.query("ROLLBACK");
        }
        // The events went in before the org row blocked; they were rolled back with it.
        assert.deepEqual(await store.loadEvents("i", { type: "org", id: "o" }, 0), []);
        assert.equal(await store.getOrg("i", "o"), null);
      });
    });

    it("gives up on a server that goes silent instead of hanging, then recovers", async () => {
      const hop = await Hop.inFrontOf(adminUrl);
      try {
        await withStore(hop.via((db.config as { url: string }).url), async (store) => {
          await store.ping();
          hop.freeze();
          // statement timeout 300 ms + 1 s of grace for a server that cannot even say it timed out
          await unavailableWithin(3000, () => store.getInstance());
          await store.ping();
        });
      } finally {
        await hop.down();
      }
    });

    it("answers StoreUnavailable while the server is down and works again when it is back", async () => {
      const hop = await Hop.inFrontOf(adminUrl);
      try {
        await withStore(hop.via((db.config as { url: string }).url), async (store) => {
          await store.ping();
          // A statement on its way when the connection drops: the client is checked out then.
          hop.freeze();
          const inFlight = unavailableWithin(2000, () => store.getInstance());
          await new Promise((resolve) => setTimeout(resolve, 50));
          await hop.down();
          await inFlight;
          await unavailableWithin(2000, () => store.ping());
          await unavailableWithin(2000, () => store.getUser("i", "u"));
          await unavailableWithin(2000, () =>
            store.append({ instanceId: "i", creator: "c", createdAt: new Date(), writes: [], readModel: [] }),
          );
          await hop.up();
          await store.ping();
          assert.equal(await store.getUser("i", "u"), null);
        });
      } finally {
        await hop.down();
      }
    });

    it("makes the API answer 503 Unavailable, without SQL, while the database is down", async () => {
      const hop = await Hop.inFrontOf(adminUrl);
      const own = await freshDatabase("postgres");
      const dir = mkdtempSync(join(tmpdir(), "latchkey-pgdown-"));
      let running: Running | null = null;
      try {
        const config = loadConfig({
          LATCHKEY_PORT: "0",
          LATCHKEY_LOG_LEVEL: "silent",
          LATCHKEY_DATABASE_URL: hop.via((own.config as { url: string }).url),
          LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS: "500",
          LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS: "500",
          LATCHKEY_ADMIN_PAT_PATH: join(dir, "admin.pat"),
        });
        running = await startLatchkey(config, jsonLogger("silent"));
        const base = `http://127.0.0.1:${running.port}`;
        const token = readFileSync(join(dir, "admin.pat"), "utf8").trim();
        const getUser = () =>
          fetch(`${base}/v2/users/${running!.app.instanceId}`, {
            headers: { authorization: `Bearer ${token}` },
          });

        assert.equal((await fetch(`${base}/debug/ready`)).status, 200);
        await hop.down();
        assert.equal((await fetch(`${base}/debug/ready`)).status, 503);
        const down = await getUser();
        assert.equal(down.status, 503);
        const body = await down.text();
        assert.match(body, /LK-DB-DOWN/);
        assert.doesNotMatch(body, /select|insert|ECONNREFUSED|pg/i);

        await hop.up();
        assert.equal((await fetch(`${base}/debug/ready`)).status, 200);
        assert.notEqual((await getUser()).status, 503);
      } finally {
        await running?.stop();
        await hop.down();
        await own.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
