import { randomUUID } from "node:crypto";
import pg from "pg";
import {
  type AppendRequest,
  type ClaimedMessage,
  ConcurrencyError,
  type InstanceRow,
  type OrgRow,
  type OutboxChange,
  OutboxClaimLost,
  type OutboxRow,
  type OutboxStatus,
  QuotaExceeded,
  type ReadModelChange,
  type SessionQuery,
  type Snapshot,
  type Store,
  type StoredMember,
  type StoredOrg,
  type StoredSession,
  type StoredToken,
  type StoredUser,
  StoreUnavailable,
  type TokenHolder,
  UniqueViolation,
  type UserPage,
  type UserSearch,
  type UserWithTail,
} from "../../app/ports.ts";
import type { AggregateRef, AggregateType, RecordedEvent } from "../../domain/events.ts";
import type { Membership } from "../../domain/permissions.ts";
import type { SessionState } from "../../domain/session/state.ts";
import type { SmsType } from "../../domain/user/events.ts";
import { type UserState, upgradeUser } from "../../domain/user/state.ts";
import { quotaRefusal } from "../quota.ts";
import { recordedIn } from "../recorded.ts";
import {
  type SearchColumnRow,
  searchColumnNames,
  searchColumns,
  searchFieldsOfRow,
  userSearchStatements,
} from "../user-search.ts";
import { Batcher } from "./batcher.ts";
import { aggregateLocks, lockStatement } from "./locks.ts";
import { postgresMigrations } from "./migrations.ts";
import { bound, Pipeline, type Prepared, prepared, rowObjects, type Statement } from "./pipeline.ts";
import { keepFirstStatistics } from "./statistics.ts";

export interface PostgresSettings {
  readonly url: string;
  readonly poolSize: number;
  // Bounds every statement on the server; the client gives up on a silent server a little later.
  readonly statementTimeoutMs: number;
  // Bounds both opening a connection and waiting for a free one in the pool.
  readonly connectTimeoutMs: number;
}

interface EventRow {
  position: string;
  aggregate_type: string;
  aggregate_id: string;
  sequence: string;
  event_type: string;
  payload: Record<string, unknown> | null;
  creator: string;
  owner: string;
  created_at: Date;
}

const eventColumns =
  "position, aggregate_type, aggregate_id, sequence, event_type, payload, creator, owner, created_at";

const membership = (kind: string, scopeId: string, roles: string[]): Membership => ({
  scope: kind === "instance" ? { kind: "instance" } : { kind: "org", orgId: scopeId },
  roles,
});

const toEvent = (r: EventRow): RecordedEvent => ({
  aggregateType: r.aggregate_type as AggregateType,
  aggregateId: r.aggregate_id,
  sequence: Number(r.sequence),
  type: r.event_type,
  payload: r.payload,
  creator: r.creator,
  owner: r.owner,
  createdAt: r.created_at,
  position: Number(r.position),
});

// SQLSTATEs that mean "not now" rather than "never": connection exceptions (08), insufficient
// resources such as too many connections (53), operator intervention (57: admin shutdown,
// statement timeout, server starting up), a lock_timeout an operator may have set (55P03), and
// 25006, which a standby answers to a write after a failover.
const unavailableClasses = new Set(["08", "53", "57"]);
const unavailableCodes = new Set(["55P03", "25006"]);
const isUnavailableCode = (code: string) =>
  unavailableClasses.has(code.slice(0, 2)) || unavailableCodes.has(code);

// The SQLSTATE latchkey_claim_lost raises (PostgreSQL migration 6).
const claimLost = "LK001";

// Called only on what a driver call threw. The server's own answers are DatabaseErrors with a
// SQLSTATE; everything else from the driver is the connection failing (refused, reset, timed
// out, a client the pool already gave up on), so it never reaches the client as raw pg text.
function translate(err: unknown): unknown {
  if (err instanceof StoreUnavailable || err instanceof QuotaExceeded || err instanceof OutboxClaimLost)
    return err;
  if (err instanceof pg.DatabaseError) {
    const code = err.code ?? "";
    if (code === "23505") {
      if (err.constraint === "events_aggregate_sequence")
        return new ConcurrencyError("an aggregate moved past the expected sequence");
      if (err.constraint === "users_username") return new UniqueViolation("username");
      if (err.constraint === "instances_pkey" || err.constraint === "instances_id_key")
        return new UniqueViolation("instance");
    }
    // Two appends locking the same rows in opposite orders, or a serialization failure where the
    // database defaults to SERIALIZABLE: the aborted one must decide again.
    if (code === "40P01" || code === "40001")
      return new ConcurrencyError("transaction aborted by a conflict");
    if (code === claimLost) return new OutboxClaimLost(err.message);
    if (isUnavailableCode(code)) return new StoreUnavailable("PostgreSQL is unavailable", { cause: err });
    return err;
  }
  return new StoreUnavailable("PostgreSQL is unreachable", { cause: err });
}

// The rows are ordered by their place in the request so that positions follow the order of the
// writes; RETURNING carries the key because its row order is not something PostgreSQL promises.
const insertEvents: Prepared = {
  name: "lk_insert_events",
  text: `
  INSERT INTO events (instance_id, aggregate_type, aggregate_id, sequence, event_type, payload, creator, owner, created_at)
  SELECT $1::text, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.payload, $2::text, e.owner, $3::timestamptz
  FROM ROWS FROM (jsonb_to_recordset($4::jsonb)
         AS (aggregate_type text, aggregate_id text, sequence bigint, event_type text, payload jsonb, owner text))
       WITH ORDINALITY AS e(aggregate_type, aggregate_id, sequence, event_type, payload, owner, n)
  ORDER BY e.n
  RETURNING position, aggregate_type, aggregate_id, sequence`,
};

interface OutboxDbRow {
  seq: string;
  id: string;
  user_id: string;
  type: string;
  recipient: string;
  language: string;
  sealed_text: string | null;
  created_at: Date;
  expires_at: Date | null;
  status: string;
  attempts: number;
  next_attempt_at: Date;
  claim: string | null;
  settled_at: Date | null;
  note: string | null;
  provider_message_id: string | null;
}

const toOutboxRow = (r: OutboxDbRow): OutboxRow => ({
  id: r.id,
  userId: r.user_id,
  type: r.type as SmsType,
  to: r.recipient,
  status: r.status as OutboxStatus,
  attempts: r.attempts,
  createdAt: r.created_at,
  nextAttemptAt: r.next_attempt_at,
  settledAt: r.settled_at,
  note: r.note,
  providerMessageId: r.provider_message_id,
  hasText: r.sealed_text !== null,
});

const outbox = prepared("outbox", {
  quotaUses: `SELECT used_at FROM sms_quota_use WHERE instance_id = $1 AND key = $2 AND used_at > $3
    ORDER BY used_at`,
  useQuota: "INSERT INTO sms_quota_use (instance_id, key, used_at, message_id) VALUES ($1, $2, $3, $4)",
  enqueue: `INSERT INTO sms_outbox (instance_id, id, user_id, type, recipient, language, sealed_text, created_at,
      expires_at, status, attempts, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $8)`,
  // Fails with claimLost when the claim no longer holds, taking the append with it.
  settle: `WITH settled AS (
      UPDATE sms_outbox SET status = $1, sealed_text = NULL, settled_at = $2, note = $3,
        provider_message_id = $4, claim = NULL
      WHERE instance_id = $5 AND id = $6 AND claim = $7 AND status = 'sending'
      RETURNING id)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM settled) THEN true ELSE latchkey_claim_lost($6) END`,
  // SKIP LOCKED: nodes claiming at the same moment each get other rows, never the same one.
  claim: `WITH due AS (
      SELECT seq, status AS was FROM sms_outbox
      WHERE instance_id = $1 AND settled_at IS NULL AND next_attempt_at >= $6
        AND ((status = 'pending' AND next_attempt_at <= $2) OR (status = 'sending' AND claimed_at < $3))
      ORDER BY next_attempt_at, seq LIMIT $4
      FOR UPDATE SKIP LOCKED)
    UPDATE sms_outbox o SET status = 'sending', claimed_at = $2, claim = $5 || ':' || o.seq,
      attempts = CASE WHEN due.was = 'pending' THEN o.attempts + 1 ELSE o.attempts END
    FROM due WHERE o.seq = due.seq
    RETURNING o.*, due.was`,
  retry: `UPDATE sms_outbox SET status = 'pending', next_attempt_at = $1, note = $2, claim = NULL, claimed_at = NULL
    WHERE instance_id = $3 AND id = $4 AND claim = $5 AND status = 'sending'`,
  of: "SELECT * FROM sms_outbox WHERE instance_id = $1 AND user_id = $2 ORDER BY seq",
  pruneSettled:
    "DELETE FROM sms_outbox WHERE instance_id = $1 AND settled_at IS NOT NULL AND settled_at < $2",
  pruneQuota: "DELETE FROM sms_quota_use WHERE instance_id = $1 AND used_at < $2",
});

const iso = (d: Date | null) => (d === null ? null : d.toISOString());
// Pipelines hand back the server's text; this is how pg itself reads a timestamptz.
const parseTimestamp: (text: string) => Date = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ);

type Enqueue = Extract<OutboxChange, { kind: "enqueue" }>;
type Settle = Extract<OutboxChange, { kind: "settle" }>;

const enqueueStatement = (req: AppendRequest, m: Enqueue["message"]): Statement =>
  bound(outbox.enqueue, [
    req.instanceId,
    m.id,
    m.userId,
    m.type,
    m.to,
    m.language,
    m.sealedText,
    req.createdAt.toISOString(),
    iso(m.expiresAt),
  ]);

const settleStatement = (req: AppendRequest, ch: Settle): Statement =>
  bound(outbox.settle, [
    ch.status,
    req.createdAt.toISOString(),
    ch.note,
    ch.providerMessageId,
    req.instanceId,
    ch.id,
    ch.claim,
  ]);

// An append that counts sending limits, in an explicit transaction of two round trips: the
// first takes the locks of its aggregates and its limits (locks.ts), counts each limit, writes
// the events and read models and settles; the second, once no limit refused,
// records the uses and the messages and commits.
// READ COMMITTED gives each count a fresh snapshot taken after its lock, so it sees what the
// previous holder of the lock committed. Answers the rows of `head`'s first statement.
async function appendChecked(
  c: pg.ClientBase,
  req: AppendRequest,
  head: readonly Statement[],
  changes: readonly OutboxChange[],
): Promise<(string | null)[][]> {
  const at = req.createdAt;
  const enqueues = changes.filter((ch): ch is Enqueue => ch.kind === "enqueue");
  const settles = changes.filter((ch): ch is Settle => ch.kind === "settle");
  const keys = [
    ...aggregateLocks(req),
    ...enqueues.flatMap((ch) => ch.quotas.map((q) => `${req.instanceId}/${q.key}`)),
  ];
  const counts = enqueues.flatMap((ch) =>
    ch.quotas.map((q) =>
      bound(outbox.quotaUses, [req.instanceId, q.key, new Date(at.getTime() - q.windowMs).toISOString()]),
    ),
  );
  const first: Statement[] = [
    { text: "BEGIN", values: [] },
    lockStatement(keys),
    ...counts,
    ...head,
    ...settles.map((ch) => settleStatement(req, ch)),
  ];
  try {
    const results = await c.query(new Pipeline(first)).done;
    const after = (i: number) => results[i]?.rows ?? [];
    const countsFrom = 2;
    const headFrom = countsFrom + counts.length;
    // Each message counts against its limits the uses of the messages before it in this append.
    const usedHere = new Map<string, Date[]>();
    let n = countsFrom;
    for (const ch of enqueues) {
      let refusal: QuotaExceeded | null = null;
      for (const quota of ch.quotas) {
        const uses = after(n++).map(([usedAt]) => parseTimestamp(usedAt ?? ""));
        const all = [...uses, ...(usedHere.get(quota.key) ?? [])].sort((x, y) => x.getTime() - y.getTime());
        const exceeded = quotaRefusal(quota, all, at);
        if (exceeded && (!refusal || exceeded.retryAfterMs > refusal.retryAfterMs)) refusal = exceeded;
      }
      if (refusal) throw refusal;
      for (const quota of ch.quotas) usedHere.set(quota.key, [...(usedHere.get(quota.key) ?? []), at]);
    }
    await c.query(
      new Pipeline([
        ...enqueues.flatMap((ch) =>
          ch.quotas.map((q) =>
            bound(outbox.useQuota, [req.instanceId, q.key, at.toISOString(), ch.message.id]),
          ),
        ),
        ...enqueues.map((ch) => enqueueStatement(req, ch.message)),
        { text: "COMMIT", values: [] },
      ]),
    ).done;
    return after(headFrom);
  } catch (err) {
    await c.query("ROLLBACK").catch(() => {});
    throw err;
  }
}

const sql = prepared("sql", {
  putUser: `INSERT INTO users (instance_id, id, org_id, username, deleted, sequence, state, ${searchColumnNames})
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
    ON CONFLICT (instance_id, id) DO UPDATE SET org_id = excluded.org_id, username = excluded.username,
      deleted = excluded.deleted, sequence = excluded.sequence, state = excluded.state,
      kind = excluded.kind, user_state = excluded.user_state, email = excluded.email, phone = excluded.phone,
      given_name = excluded.given_name, family_name = excluded.family_name,
      nick_name = excluded.nick_name, display_name = excluded.display_name,
      created_at = excluded.created_at`,
  putToken: `INSERT INTO tokens (instance_id, token_id, token_hash, user_id, expires_at)
    VALUES ($1, $2, $3, $4, $5)`,
  deleteToken: "DELETE FROM tokens WHERE instance_id = $1 AND token_id = $2",
  deleteTokensOfUser: "DELETE FROM tokens WHERE instance_id = $1 AND user_id = $2",
  putMember: `INSERT INTO members (instance_id, user_id, scope_kind, scope_id, roles) VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (instance_id, user_id, scope_id) DO UPDATE SET roles = excluded.roles`,
  deleteMember: "DELETE FROM members WHERE instance_id = $1 AND user_id = $2 AND scope_id = $3",
  deleteMembersOfUser: "DELETE FROM members WHERE instance_id = $1 AND user_id = $2",
  putOrg: `INSERT INTO orgs (instance_id, id, name, sequence) VALUES ($1, $2, $3, $4)
    ON CONFLICT (instance_id, id) DO UPDATE SET name = excluded.name, sequence = excluded.sequence`,
  putInstance: `INSERT INTO instances (singleton, id, name, default_org_id) VALUES (1, $1, $2, $3)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name, default_org_id = excluded.default_org_id`,
  putSession: `INSERT INTO sessions (instance_id, id, user_id, creator, created_at, state)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (instance_id, id) DO UPDATE SET user_id = excluded.user_id, state = excluded.state`,
  deleteSession: "DELETE FROM sessions WHERE instance_id = $1 AND id = $2",
  session: "SELECT state FROM sessions WHERE instance_id = $1 AND id = $2",
  sessionsOfUser: "SELECT state FROM sessions WHERE instance_id = $1 AND user_id = $2",
  userByLoginName:
    "SELECT id FROM users WHERE instance_id = $1 AND lower(username) = lower($2) AND NOT deleted",
  load: `SELECT ${eventColumns} FROM events
    WHERE instance_id = $1 AND aggregate_type = $2 AND aggregate_id = $3 AND sequence > $4 ORDER BY sequence`,
  latest: `SELECT ${eventColumns} FROM events
    WHERE instance_id = $1 AND aggregate_type = $2 AND aggregate_id = $3 ORDER BY sequence DESC LIMIT $4`,
  log: `SELECT ${eventColumns} FROM events WHERE instance_id = $1 AND position > $2 ORDER BY position LIMIT $3`,
  instance: "SELECT id, name, default_org_id FROM instances",
  user: "SELECT state FROM users WHERE instance_id = $1 AND id = $2",
  org: "SELECT id, name FROM orgs WHERE instance_id = $1 AND id = $2",
  // A token, its user's row and the user's memberships (as [kind, scope, roles], ordered as
  // `members`), from one snapshot.
  tokenHolder: `SELECT t.token_id, t.user_id, t.expires_at, u.state,
      (SELECT coalesce(json_agg(json_build_array(m.scope_kind, m.scope_id, m.roles) ORDER BY m.scope_id), '[]')
        FROM members m WHERE m.instance_id = t.instance_id AND m.user_id = t.user_id) AS members
    FROM tokens t LEFT JOIN users u ON u.instance_id = t.instance_id AND u.id = t.user_id
    WHERE t.instance_id = $1 AND t.token_hash = $2`,
  // A user's row and the events above its sequence: one row per event, or a single row without
  // one (state null when there is no row either).
  userWithTail: `SELECT u.state, ${eventColumns.replace(/(\w+)/g, "e.$1")}
    FROM (SELECT 1) AS one
    LEFT JOIN users u ON u.instance_id = $1 AND u.id = $2
    LEFT JOIN events e ON e.instance_id = $1 AND e.aggregate_type = 'user' AND e.aggregate_id = $2
      AND e.sequence > coalesce(u.sequence, 0)
    ORDER BY e.sequence`,
  members:
    "SELECT scope_kind, scope_id, roles FROM members WHERE instance_id = $1 AND user_id = $2 ORDER BY scope_id",
  // A snapshot: in a repeatable-read transaction, the first query fixes what every later one sees.
  snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
  allUsers: `SELECT id, org_id, username, deleted, sequence, state, ${searchColumnNames} FROM users
    WHERE instance_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
  allTokens:
    "SELECT token_id, token_hash, user_id, expires_at FROM tokens WHERE instance_id = $1 ORDER BY token_id",
  allMembers: `SELECT user_id, scope_kind, scope_id, roles FROM members WHERE instance_id = $1
    ORDER BY user_id, scope_id`,
  allOrgs: "SELECT id, name, sequence FROM orgs WHERE instance_id = $1 ORDER BY id",
  allSessions:
    "SELECT id, user_id, creator, created_at, state FROM sessions WHERE instance_id = $1 ORDER BY id",
});

function changeStatement(instanceId: string, c: ReadModelChange): Statement {
  switch (c.kind) {
    case "user.put":
      return bound(sql.putUser, [
        instanceId,
        c.user.id,
        c.user.orgId,
        c.user.username,
        String(c.user.deleted),
        String(c.user.sequence),
        JSON.stringify(c.user),
        ...searchColumns(c.user),
      ]);
    case "token.put":
      return bound(sql.putToken, [instanceId, c.tokenId, c.tokenHash, c.userId, c.expiresAt]);
    case "token.delete":
      return bound(sql.deleteToken, [instanceId, c.tokenId]);
    case "token.deleteOfUser":
      return bound(sql.deleteTokensOfUser, [instanceId, c.userId]);
    case "member.put": {
      const s = c.membership.scope;
      const scopeId = s.kind === "instance" ? instanceId : s.orgId;
      return bound(sql.putMember, [
        instanceId,
        c.userId,
        s.kind,
        scopeId,
        JSON.stringify(c.membership.roles),
      ]);
    }
    case "member.delete":
      return bound(sql.deleteMember, [instanceId, c.userId, c.scopeId]);
    case "member.deleteOfUser":
      return bound(sql.deleteMembersOfUser, [instanceId, c.userId]);
    case "org.put":
      return bound(sql.putOrg, [instanceId, c.id, c.name, String(c.sequence)]);
    case "instance.put":
      return bound(sql.putInstance, [c.id, c.name, c.defaultOrgId]);
    case "session.put":
      return bound(sql.putSession, [
        instanceId,
        c.session.id,
        c.session.userId,
        c.session.creator,
        c.session.createdAt ?? "",
        JSON.stringify(c.session),
      ]);
    case "session.delete":
      return bound(sql.deleteSession, [instanceId, c.sessionId]);
  }
}

type Rows = <R extends pg.QueryResultRow>(statement: string | Prepared, values: unknown[]) => Promise<R[]>;

// pg's query config for a statement, named or not. A fresh object each time: pg writes the
// values into the config it is given.
const config = (statement: string | Prepared, values: unknown[]): pg.QueryConfig =>
  typeof statement === "string"
    ? { text: statement, values }
    : { name: statement.name, text: statement.text, values };

function snapshotOn(instanceId: string, rows: Rows): Snapshot {
  return {
    async readLog(afterPosition, limit) {
      return (await rows<EventRow>(sql.log, [instanceId, afterPosition, limit])).map(toEvent);
    },
    async listUsers(afterId, limit) {
      const found = await rows<
        {
          id: string;
          org_id: string;
          username: string;
          deleted: boolean;
          sequence: string;
          state: UserState;
        } & SearchColumnRow
      >(sql.allUsers, [instanceId, afterId, limit]);
      return found.map(
        (r): StoredUser => ({
          id: r.id,
          state: upgradeUser(r.state),
          orgId: r.org_id,
          username: r.username,
          deleted: r.deleted,
          sequence: Number(r.sequence),
          search: searchFieldsOfRow(r),
        }),
      );
    },
    async listTokens() {
      const found = await rows<{
        token_id: string;
        token_hash: string;
        user_id: string;
        expires_at: string | null;
      }>(sql.allTokens, [instanceId]);
      return found.map(
        (r): StoredToken => ({
          tokenId: r.token_id,
          tokenHash: r.token_hash,
          userId: r.user_id,
          expiresAt: r.expires_at,
        }),
      );
    },
    async listMembers() {
      const found = await rows<{
        user_id: string;
        scope_kind: StoredMember["scopeKind"];
        scope_id: string;
        roles: string[];
      }>(sql.allMembers, [instanceId]);
      return found.map(
        (r): StoredMember => ({
          userId: r.user_id,
          scopeKind: r.scope_kind,
          scopeId: r.scope_id,
          roles: r.roles,
        }),
      );
    },
    async listSessions() {
      const found = await rows<{
        id: string;
        user_id: string;
        creator: string;
        created_at: string;
        state: SessionState;
      }>(sql.allSessions, [instanceId]);
      return found.map(
        (r): StoredSession => ({
          id: r.id,
          state: r.state,
          userId: r.user_id,
          creator: r.creator,
          createdAt: r.created_at,
        }),
      );
    },
    async listOrgs() {
      const found = await rows<{ id: string; name: string; sequence: string }>(sql.allOrgs, [instanceId]);
      return found.map((r): StoredOrg => ({ id: r.id, name: r.name, sequence: Number(r.sequence) }));
    },
    async getInstance() {
      const [r] = await rows<{ id: string; name: string; default_org_id: string }>(sql.instance, []);
      return r ? { id: r.id, name: r.name, defaultOrgId: r.default_org_id } : null;
    },
  };
}

// Advisory locks are per database, so this key only serializes nodes that share one database.
const migrationLockKey = 0x4c61746368; // "Latch"

// Every node runs this at start. The session-level advisory lock lets one node migrate while
// the others wait and then find nothing left to do; each migration commits on its own, so a
// crash part way keeps what finished and the next start resumes.
export async function runPostgresMigrations(client: pg.ClientBase): Promise<number[]> {
  await client.query("SELECT pg_advisory_lock($1)", [migrationLockKey]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`);
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of postgresMigrations) {
      if (done.has(m.version)) continue;
      await client.query("BEGIN");
      try {
        await client.query(m.sql);
        await client.query(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())",
          [m.version, m.name],
        );
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [migrationLockKey]).catch(() => {});
  }
}

// An error event on a client the pool holds (idle, or checked out between two queries) has no
// one to go to: the operation that next uses the client fails with StoreUnavailable and the
// pool replaces it. Without a listener, Node would end the process on the event.
const ignoreClientError = () => {};

// How long after the statement timeout the client stops waiting for a server that says nothing
// at all (a frozen host, a network partition), where no statement timeout can fire.
const silenceGraceMs = 1000;

export async function openPostgresStore(
  settings: PostgresSettings,
  options: { migrate?: boolean; statisticsEveryMs?: number } = {},
): Promise<Store> {
  const connection = {
    connectionString: settings.url,
    connectionTimeoutMillis: settings.connectTimeoutMs,
    // Keeps idle pooled connections alive through firewalls that drop quiet flows, and lets the
    // kernel notice a peer that vanished; a silent server on a busy connection is the deadline's job.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: "latchkey",
  };

  // Migrations get their own connection without the statement timeout: a long migration is
  // legitimate, and waiting for another node's migration is the point of the lock.
  if (options.migrate !== false) {
    const migrator = new pg.Client(connection);
    migrator.on("error", ignoreClientError);
    try {
      await migrator.connect();
      await runPostgresMigrations(migrator);
    } catch (err) {
      throw translate(err);
    } finally {
      await migrator.end().catch(() => {});
    }
  }

  const pool = new pg.Pool({
    ...connection,
    max: settings.poolSize,
    statement_timeout: settings.statementTimeoutMs,
  });
  pool.on("error", ignoreClientError);
  pool.on("connect", (client) => client.on("error", ignoreClientError));
  // Only a store that owns the schema touches it: verify reads a database as found.
  const statistics =
    options.migrate !== false ? keepFirstStatistics(pool, options.statisticsEveryMs ?? 2000) : null;

  const answerWithinMs = settings.statementTimeoutMs + silenceGraceMs;

  async function checkout(): Promise<pg.PoolClient> {
    try {
      return await pool.connect();
    } catch (err) {
      throw translate(err);
    }
  }

  // Driver calls on a checked-out client, bounded so that a server gone silent cannot hold the
  // caller; whatever they throw is read as the database's answer or its absence.
  async function answered<T>(call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const silence = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailable(`PostgreSQL did not answer within ${answerWithinMs} ms`)),
        answerWithinMs,
      );
    });
    try {
      return await Promise.race([call, silence]);
    } catch (err) {
      throw translate(err);
    } finally {
      clearTimeout(timer);
    }
  }

  // A client that timed out or lost its connection may still be mid-statement: the pool closes
  // it instead of handing it to the next caller.
  const giveBack = (client: pg.PoolClient, failure: unknown) =>
    client.release(failure instanceof StoreUnavailable ? failure : undefined);

  // Checks a client out, runs the driver calls of `work` on it and gives it back.
  async function withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await checkout();
    try {
      const result = await answered(work(client));
      client.release();
      return result;
    } catch (err) {
      giveBack(client, err);
      throw err;
    }
  }

  // Appends that count no sending limit, and the lookups every call makes, share round trips
  // with the others of their turn (batcher.ts). A batch of appends first takes the locks of every
  // aggregate its appends write (locks.ts) and holds them until it commits, so batches of this
  // node and of others wait for each other instead of deadlocking (docs/operations.md, "Round
  // trips"). Two batches of appends may be on their way at once, the next gathering meanwhile:
  // with one, every append waited for a single PostgreSQL backend (docs/benchmarks.md, 16).
  const pipeline = (describe: boolean) => (statements: readonly Statement[]) =>
    withClient((c) => c.query(new Pipeline(statements, describe)).done);
  const maxWaitMs = settings.connectTimeoutMs;
  const writes = new Batcher(pipeline(false), {
    name: "appends",
    inFlight: 2,
    statements: 256,
    maxWaitMs,
    lock: lockStatement,
  });
  const reads = new Batcher(pipeline(true), {
    name: "lookups",
    inFlight: settings.poolSize,
    statements: 64,
    maxWaitMs,
  });
  const read = async <R>(statement: Prepared, values: readonly string[]): Promise<R[]> =>
    rowObjects<R>((await reads.run([bound(statement, values)]))[0]);
  // Only the database itself, a lost claim included, can refuse an append that counts no sending
  // limit, so such an append joins its turn's batch. Answers the rows of its first statement.
  async function appendBatched(
    req: AppendRequest,
    head: readonly Statement[],
    changes: readonly OutboxChange[],
  ): Promise<(string | null)[][]> {
    const outboxStatements = changes.map((ch) =>
      ch.kind === "enqueue" ? enqueueStatement(req, ch.message) : settleStatement(req, ch),
    );
    const [first] = await writes.run([...head, ...outboxStatements], aggregateLocks(req));
    return first?.rows ?? [];
  }

  const select = async <R extends pg.QueryResultRow>(
    statement: string | Prepared,
    values: unknown[],
  ): Promise<R[]> => (await withClient((c) => c.query<R>(config(statement, values)))).rows;

  return {
    dialect: "postgres",
    async loadEvents(instanceId: string, ref: AggregateRef, afterSequence: number) {
      return (await select<EventRow>(sql.load, [instanceId, ref.type, ref.id, afterSequence])).map(toEvent);
    },
    async append(req: AppendRequest) {
      const rows = req.writes.flatMap((w) =>
        w.events.map((e, i) => ({
          aggregate_type: w.ref.type,
          aggregate_id: w.ref.id,
          sequence: w.expectedSequence + i + 1,
          event_type: e.type,
          payload: e.payload,
          owner: w.owner,
        })),
      );
      const statements: Statement[] = [
        bound(insertEvents, [req.instanceId, req.creator, req.createdAt.toISOString(), JSON.stringify(rows)]),
        ...req.readModel.map((c) => changeStatement(req.instanceId, c)),
      ];
      const changes = req.outbox ?? [];
      const counted = changes.some((ch) => ch.kind === "enqueue" && ch.quotas.length > 0);
      const inserted = counted
        ? await withClient((c) => appendChecked(c, req, statements, changes))
        : await appendBatched(req, statements, changes);
      const positions = new Map<string, number>();
      for (const [position, type, id, sequence] of inserted)
        positions.set(JSON.stringify([type, id, Number(sequence)]), Number(position));
      return req.writes.flatMap((w) =>
        w.events.map((e, i): RecordedEvent => {
          const sequence = w.expectedSequence + i + 1;
          const position = positions.get(JSON.stringify([w.ref.type, w.ref.id, sequence]));
          if (position === undefined) throw new Error(`no position returned for ${w.ref.type} ${w.ref.id}`);
          return recordedIn(req, w, e, sequence, position);
        }),
      );
    },
    async latestEvents(instanceId: string, ref: AggregateRef, limit: number) {
      return (await select<EventRow>(sql.latest, [instanceId, ref.type, ref.id, limit])).map(toEvent);
    },
    async readLog(instanceId: string, afterPosition: number, limit: number) {
      return (await select<EventRow>(sql.log, [instanceId, afterPosition, limit])).map(toEvent);
    },
    async getInstance(): Promise<InstanceRow | null> {
      const [r] = await select<{ id: string; name: string; default_org_id: string }>(sql.instance, []);
      return r ? { id: r.id, name: r.name, defaultOrgId: r.default_org_id } : null;
    },
    async getUser(instanceId: string, userId: string): Promise<UserState | null> {
      const [r] = await read<{ state: UserState }>(sql.user, [instanceId, userId]);
      return r ? upgradeUser(r.state) : null;
    },
    async loadUser(instanceId: string, userId: string): Promise<UserWithTail> {
      const rows = await read<{ state: UserState | null } & { [K in keyof EventRow]: EventRow[K] | null }>(
        sql.userWithTail,
        [instanceId, userId],
      );
      const state = rows[0]?.state ?? null;
      return {
        snapshot: state ? upgradeUser(state) : null,
        tail: rows.flatMap((r) => (r.position === null ? [] : [toEvent(r as EventRow)])),
      };
    },
    async searchUsers(instanceId: string, search: UserSearch): Promise<UserPage> {
      const { count, page } = userSearchStatements(instanceId, search, "postgres");
      // One snapshot for both, so that the total and the page agree.
      return withClient(async (c) => {
        await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        try {
          const total = await c.query<{ total: string }>(count.text, count.values);
          const rows = await c.query<{ state: UserState }>(page.text, page.values);
          await c.query("COMMIT");
          return { total: Number(total.rows[0]?.total ?? 0), users: rows.rows.map((r) => r.state) };
        } catch (err) {
          await c.query("ROLLBACK").catch(() => {});
          throw err;
        }
      });
    },
    async getOrg(instanceId: string, orgId: string): Promise<OrgRow | null> {
      const [r] = await read<{ id: string; name: string }>(sql.org, [instanceId, orgId]);
      return r ? { id: r.id, name: r.name } : null;
    },
    async findTokenHolder(instanceId: string, tokenHash: string): Promise<TokenHolder | null> {
      const [r] = await read<{
        token_id: string;
        user_id: string;
        expires_at: string | null;
        state: UserState | null;
        members: [string, string, string[]][];
      }>(sql.tokenHolder, [instanceId, tokenHash]);
      if (!r) return null;
      return {
        token: { tokenId: r.token_id, userId: r.user_id, expiresAt: r.expires_at },
        user: r.state ? upgradeUser(r.state) : null,
        memberships: r.members.map(([kind, scopeId, roles]) => membership(kind, scopeId, roles)),
      };
    },
    async membershipsOf(instanceId: string, userId: string): Promise<Membership[]> {
      const rows = await read<{ scope_kind: string; scope_id: string; roles: string[] }>(sql.members, [
        instanceId,
        userId,
      ]);
      return rows.map((r) => membership(r.scope_kind, r.scope_id, r.roles));
    },
    async claimOutbox(instanceId, options) {
      const rows = await select<OutboxDbRow & { was: string }>(outbox.claim, [
        instanceId,
        options.now,
        options.staleBefore,
        options.limit,
        randomUUID(),
        options.dueFrom ?? "-infinity",
      ]);
      rows.sort(
        (a, b) => a.next_attempt_at.getTime() - b.next_attempt_at.getTime() || Number(a.seq) - Number(b.seq),
      );
      return rows.map(
        (r): ClaimedMessage => ({
          id: r.id,
          userId: r.user_id,
          type: r.type as SmsType,
          to: r.recipient,
          language: r.language,
          sealedText: r.sealed_text ?? "",
          expiresAt: r.expires_at,
          createdAt: r.created_at,
          dueAt: r.next_attempt_at,
          attempt: r.attempts,
          claim: r.claim ?? "",
          abandoned: r.was === "sending",
        }),
      );
    },
    async retryOutbox(instanceId, id, claim, nextAttemptAt, note) {
      const r = await withClient((c) =>
        c.query(config(outbox.retry, [nextAttemptAt, note, instanceId, id, claim])),
      );
      return (r.rowCount ?? 0) > 0;
    },
    async outboxOf(instanceId, userId) {
      return (await select<OutboxDbRow>(outbox.of, [instanceId, userId])).map(toOutboxRow);
    },
    async pruneOutbox(instanceId, settledBefore, countedBefore) {
      await withClient(async (c) => {
        await c.query(config(outbox.pruneSettled, [instanceId, settledBefore]));
        await c.query(config(outbox.pruneQuota, [instanceId, countedBefore]));
      });
    },
    async snapshot<T>(instanceId: string, read: (view: Snapshot) => Promise<T>): Promise<T> {
      const client = await checkout();
      // Each statement is bounded on its own: the whole read may rightly outlast one timeout.
      let failure: unknown;
      const rows = async <R extends pg.QueryResultRow>(statement: string | Prepared, values: unknown[]) => {
        try {
          return (await answered(client.query<R>(config(statement, values)))).rows;
        } catch (err) {
          failure ??= err;
          throw err;
        }
      };
      try {
        await rows(sql.snapshot, []);
        const result = await read(snapshotOn(instanceId, rows));
        await rows("COMMIT", []);
        client.release();
        return result;
      } catch (err) {
        // After what `read` itself threw, or a refused statement, the connection is sound: end
        // its transaction and keep it. After a lost connection, or a failed ROLLBACK, close it.
        let broken = failure instanceof StoreUnavailable;
        if (!broken)
          await answered(client.query("ROLLBACK")).catch(() => {
            broken = true;
          });
        client.release(broken ? new Error("snapshot connection is unusable") : undefined);
        throw err;
      }
    },
    poolStats() {
      return {
        total: pool.totalCount,
        idle: pool.idleCount,
        max: settings.poolSize,
        waiting: pool.waitingCount,
      };
    },
    async userIdByLoginName(instanceId: string, loginName: string): Promise<string | null> {
      const [r] = await read<{ id: string }>(sql.userByLoginName, [instanceId, loginName]);
      return r?.id ?? null;
    },
    async getSession(instanceId: string, sessionId: string): Promise<SessionState | null> {
      const [r] = await read<{ state: SessionState }>(sql.session, [instanceId, sessionId]);
      return r ? r.state : null;
    },
    async sessionsOfUser(instanceId: string, userId: string): Promise<SessionState[]> {
      return (await read<{ state: SessionState }>(sql.sessionsOfUser, [instanceId, userId])).map(
        (r) => r.state,
      );
    },
    async listSessions(instanceId: string, query: SessionQuery) {
      const args: unknown[] = [instanceId];
      const arg = (v: unknown) => {
        args.push(v);
        return `$${args.length}`;
      };
      const where = ["instance_id = $1"];
      if (query.visibleTo !== null) {
        const me = arg(query.visibleTo.userId);
        const orgIds = query.visibleTo.orgIds;
        const inOrgs =
          orgIds.length === 0
            ? ""
            : ` OR user_id IN (SELECT id FROM users WHERE instance_id = $1 AND org_id = ANY(${arg([...orgIds])}::text[]))`;
        where.push(`(creator = ${me} OR user_id = ${me}${inOrgs})`);
      }
      if (query.userId !== undefined) where.push(`user_id = ${arg(query.userId)}`);
      if (query.creator !== undefined) where.push(`creator = ${arg(query.creator)}`);
      if (query.ids !== undefined) where.push(`id = ANY(${arg([...query.ids])}::text[])`);
      const filter = where.join(" AND ");
      const [count] = await select<{ n: string }>(`SELECT count(*) AS n FROM sessions WHERE ${filter}`, [
        ...args,
      ]);
      const rows = await select<{ state: SessionState }>(
        `SELECT state FROM sessions WHERE ${filter}
         ORDER BY created_at ${query.ascending ? "ASC" : "DESC"}, id
         LIMIT ${arg(query.limit)} OFFSET ${arg(query.offset)}`,
        args,
      );
      return { total: Number(count?.n ?? 0), sessions: rows.map((r) => r.state) };
    },
    async ping() {
      await withClient((c) => c.query("SELECT 1"));
    },
    async close() {
      await statistics?.stop();
      await pool.end();
    },
  };
}
