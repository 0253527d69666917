import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";

export type DatabaseKind = "sqlite" | "postgres";

export interface BenchDatabase {
  readonly kind: DatabaseKind;
  // What LATCHKEY_DATABASE_URL is set to.
  readonly url: string;
  // For the C_store child: a file path, or the database's own URL.
  readonly target: { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };
  countEvents(): Promise<number>;
  fillHistory(pairsPerUser: number): Promise<{ sampleUserSequence: number; sampleUserId: string }>;
  drop(): Promise<void>;
}

// Why PostgreSQL cannot be used, or null when it answers.
export async function postgresProblem(adminUrl: string): Promise<string | null> {
  const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query("SELECT 1");
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await c.end().catch(() => {});
  }
}

// Users the bench made (bench/prepare.ts names them so); the admin and anything else stay untouched.
const benchUsers = "username LIKE 'bench-%'";

export async function freshDatabase(
  kind: DatabaseKind,
  dir: string,
  adminUrl: string,
): Promise<BenchDatabase> {
  if (kind === "sqlite") {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "latchkey.db");
    return {
      kind,
      url: `sqlite:${path}`,
      target: { kind: "sqlite", path },
      async countEvents() {
        const db = new Database(path, { readonly: true });
        try {
          return (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
        } finally {
          db.close();
        }
      },
      async fillHistory(pairs) {
        const db = new Database(path);
        try {
          db.pragma("journal_mode = WAL");
          return fillSqlite(db, pairs);
        } finally {
          db.close();
        }
      },
      async drop() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `lk_bench_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const withClient = async <T>(work: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await work(c);
    } finally {
      await c.end();
    }
  };
  return {
    kind,
    url,
    target: { kind: "postgres", url },
    countEvents: () =>
      withClient(async (c) => Number((await c.query("SELECT count(*) AS n FROM events")).rows[0].n)),
    fillHistory: (pairs) => withClient((c) => fillPostgres(c, pairs)),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

// History as AddOTPSMS + RemoveOTPSMS pairs would have left it, written straight into the
// tables while the server is stopped: a million events through the API would take longer than
// the whole benchmark. The rows are the two events a pair records for the user (same types, null
// payloads, the admin as creator, the user's org as owner); the removal notice's own event and
// outbox row are left out, so the outbox holds only what measured runs put there. They go in
// round by round across all users so that positions interleave as under load, and each user's
// snapshot row moves to the new sequence, which is all a pair changes in it besides changedAt. A
// user whose snapshot disagreed with its events would fail its next call, so the load that
// follows checks the fill.
const added = "user.human.mfa.otp.sms.added";
const removed = "user.human.mfa.otp.sms.removed";

function fillSqlite(db: Database.Database, pairs: number) {
  const users = db
    .prepare(`SELECT instance_id, id, org_id, sequence FROM users WHERE ${benchUsers} ORDER BY id`)
    .all() as { instance_id: string; id: string; org_id: string; sequence: number }[];
  if (users.length === 0) throw new Error("no bench users to give a history");
  const first = users[0]!;
  const creator = (
    db
      .prepare(
        "SELECT creator FROM events WHERE aggregate_type = 'user' AND aggregate_id = ? AND sequence = 1",
      )
      .get(first.id) as { creator: string }
  ).creator;
  const insert = db.prepare(
    `INSERT INTO events (instance_id, aggregate_type, aggregate_id, sequence, event_type, payload, creator, owner, created_at)
     VALUES (?, 'user', ?, ?, ?, NULL, ?, ?, ?)`,
  );
  const at = new Date().toISOString();
  const update = db.prepare(
    `UPDATE users SET sequence = sequence + ?, state = json_set(state, '$.sequence', sequence + ?, '$.changedAt', ?)
     WHERE instance_id = ? AND id = ?`,
  );
  db.transaction(() => {
    for (let r = 0; r < pairs; r++) {
      for (const u of users) {
        const s = u.sequence + 2 * r;
        insert.run(u.instance_id, u.id, s + 1, added, creator, u.org_id, at);
        insert.run(u.instance_id, u.id, s + 2, removed, creator, u.org_id, at);
      }
    }
    for (const u of users) update.run(2 * pairs, 2 * pairs, at, u.instance_id, u.id);
  }).immediate();
  // The server would otherwise start with a WAL as large as the fill.
  db.pragma("wal_checkpoint(TRUNCATE)");
  return { sampleUserId: first.id, sampleUserSequence: first.sequence + 2 * pairs };
}

async function fillPostgres(c: pg.Client, pairs: number) {
  const first = (
    await c.query<{ id: string; sequence: string }>(
      `SELECT id, sequence FROM users WHERE ${benchUsers} ORDER BY id LIMIT 1`,
    )
  ).rows[0];
  if (!first) throw new Error("no bench users to give a history");
  const { creator } = (
    await c.query<{ creator: string }>(
      "SELECT creator FROM events WHERE aggregate_type = 'user' AND aggregate_id = $1 AND sequence = 1",
      [first.id],
    )
  ).rows[0]!;
  const at = new Date().toISOString();
  await c.query("BEGIN");
  try {
    for (let r = 0; r < pairs; r++) {
      await c.query(
        `INSERT INTO events (instance_id, aggregate_type, aggregate_id, sequence, event_type, payload, creator, owner, created_at)
         SELECT u.instance_id, 'user', u.id, u.sequence + $1 + k.k, k.type, NULL, $2, u.org_id, $3
         FROM users u CROSS JOIN (VALUES (1, $4::text), (2, $5::text)) AS k(k, type)
         WHERE ${benchUsers}
         ORDER BY u.id, k.k`,
        [2 * r, creator, at, added, removed],
      );
    }
    await c.query(
      `UPDATE users SET sequence = sequence + $1,
         state = jsonb_set(jsonb_set(state, '{sequence}', to_jsonb(sequence + $1)), '{changedAt}', to_jsonb($2::text))
       WHERE ${benchUsers}`,
      [2 * pairs, at],
    );
    await c.query("COMMIT");
  } catch (err) {
    await c.query("ROLLBACK").catch(() => {});
    throw err;
  }
  // What autovacuum would get to soon after such a burst: dead user rows gone, statistics fresh.
  await c.query("VACUUM ANALYZE users");
  await c.query("VACUUM ANALYZE events");
  return { sampleUserId: first.id, sampleUserSequence: Number(first.sequence) + 2 * pairs };
}
