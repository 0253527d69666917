import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
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
  type QuotaExceeded,
  type ReadModelChange,
  type SessionQuery,
  type Snapshot,
  type Store,
  type StoredMember,
  type StoredSession,
  type StoredToken,
  type StoredUser,
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
import { registerFunctions } from "./functions.ts";
import { groupCommit } from "./group-commit.ts";
import { sqliteMigrations } from "./migrations.ts";
import { ReadCache } from "./read-cache.ts";

interface EventRow {
  position: number;
  aggregate_type: string;
  aggregate_id: string;
  sequence: number;
  event_type: string;
  payload: string | null;
  creator: string;
  owner: string;
  created_at: string;
}

const toEvent = (r: EventRow): RecordedEvent => ({
  aggregateType: r.aggregate_type as AggregateType,
  aggregateId: r.aggregate_id,
  sequence: r.sequence,
  type: r.event_type,
  payload: r.payload === null ? null : JSON.parse(r.payload),
  creator: r.creator,
  owner: r.owner,
  createdAt: new Date(r.created_at),
  position: r.position,
});

interface OutboxDbRow {
  seq: number;
  id: string;
  user_id: string;
  type: string;
  recipient: string;
  language: string;
  sealed_text: string | null;
  created_at: string;
  expires_at: string | null;
  status: string;
  attempts: number;
  next_attempt_at: string;
  settled_at: string | null;
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
  createdAt: new Date(r.created_at),
  nextAttemptAt: new Date(r.next_attempt_at),
  settledAt: r.settled_at === null ? null : new Date(r.settled_at),
  note: r.note,
  providerMessageId: r.provider_message_id,
  hasText: r.sealed_text !== null,
});

// Users whose state the store keeps in memory (src/store/sqlite/read-cache.ts): about the ones
// a busy server works on within a few seconds, at a few kilobytes each, so that memory stays
// well under the 200 MB a node is meant to need.
const keptUsers = 2000;

const uniqueCodes = new Set(["SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"]);
const isUnique = (e: unknown) => e instanceof Error && uniqueCodes.has((e as { code?: string }).code ?? "");

export function runSqliteMigrations(db: Database.Database): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`);
  // IMMEDIATE takes the write lock first, so two processes starting together do not both migrate.
  return db
    .transaction(() => {
      const done = new Set(
        db
          .prepare("SELECT version FROM schema_migrations")
          .all()
          .map((r) => (r as { version: number }).version),
      );
      const applied: number[] = [];
      for (const m of sqliteMigrations) {
        if (done.has(m.version)) continue;
        try {
          db.exec(m.sql);
        } catch (err) {
          throw new Error(`schema migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, {
            cause: err,
          });
        }
        db.prepare("INSERT INTO schema_migrations VALUES (?, ?, ?)").run(
          m.version,
          m.name,
          new Date().toISOString(),
        );
        applied.push(m.version);
      }
      return applied;
    })
    .immediate();
}

// The snapshot's reads; the same text serves the store's own connection and a reader's.
const snapshotSql = {
  log: "SELECT * FROM events WHERE instance_id = ? AND position > ? ORDER BY position LIMIT ?",
  users: `SELECT id, org_id, username, deleted, sequence, state, ${searchColumnNames} FROM users
    WHERE instance_id = ? AND id > ? ORDER BY id LIMIT ?`,
  tokens:
    "SELECT token_id, token_hash, user_id, expires_at FROM tokens WHERE instance_id = ? ORDER BY token_id",
  members: `SELECT user_id, scope_kind, scope_id, roles FROM members WHERE instance_id = ?
    ORDER BY user_id, scope_id`,
  orgs: "SELECT id, name, sequence FROM orgs WHERE instance_id = ? ORDER BY id",
  instance: "SELECT id, name, default_org_id FROM instances LIMIT 1",
  sessions: "SELECT id, user_id, creator, created_at, state FROM sessions WHERE instance_id = ? ORDER BY id",
};

function snapshotOn(db: Database.Database, instanceId: string): Snapshot {
  const all = (text: string, ...values: unknown[]) => db.prepare(text).all(...values);
  return {
    async readLog(afterPosition, limit) {
      return (all(snapshotSql.log, instanceId, afterPosition, limit) as EventRow[]).map(toEvent);
    },
    async listUsers(afterId, limit) {
      const rows = all(snapshotSql.users, instanceId, afterId, limit) as ({
        id: string;
        org_id: string;
        username: string;
        deleted: number;
        sequence: number;
        state: string;
      } & SearchColumnRow)[];
      return rows.map(
        (r): StoredUser => ({
          id: r.id,
          state: upgradeUser(JSON.parse(r.state) as UserState),
          orgId: r.org_id,
          username: r.username,
          deleted: r.deleted !== 0,
          sequence: r.sequence,
          search: searchFieldsOfRow(r),
        }),
      );
    },
    async listTokens() {
      const rows = all(snapshotSql.tokens, instanceId) as {
        token_id: string;
        token_hash: string;
        user_id: string;
        expires_at: string | null;
      }[];
      return rows.map(
        (r): StoredToken => ({
          tokenId: r.token_id,
          tokenHash: r.token_hash,
          userId: r.user_id,
          expiresAt: r.expires_at,
        }),
      );
    },
    async listMembers() {
      const rows = all(snapshotSql.members, instanceId) as {
        user_id: string;
        scope_kind: StoredMember["scopeKind"];
        scope_id: string;
        roles: string;
      }[];
      return rows.map(
        (r): StoredMember => ({
          userId: r.user_id,
          scopeKind: r.scope_kind,
          scopeId: r.scope_id,
          roles: JSON.parse(r.roles) as string[],
        }),
      );
    },
    async listSessions() {
      const rows = all(snapshotSql.sessions, instanceId) as {
        id: string;
        user_id: string;
        creator: string;
        created_at: string;
        state: string;
      }[];
      return rows.map(
        (r): StoredSession => ({
          id: r.id,
          state: JSON.parse(r.state) as SessionState,
          userId: r.user_id,
          creator: r.creator,
          createdAt: r.created_at,
        }),
      );
    },
    async listOrgs() {
      return all(snapshotSql.orgs, instanceId) as { id: string; name: string; sequence: number }[];
    },
    async getInstance() {
      const r = db.prepare(snapshotSql.instance).get() as
        | { id: string; name: string; default_org_id: string }
        | undefined;
      return r ? { id: r.id, name: r.name, defaultOrgId: r.default_org_id } : null;
    },
  };
}

export function openSqliteStore(path: string, options: { migrate?: boolean } = {}): Store {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  registerFunctions(db);
  db.pragma("journal_mode = WAL");
  // FULL: a write acknowledged to a client survives a power cut, not only a process crash.
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  if (options.migrate !== false) runSqliteMigrations(db);

  const q = {
    load: db.prepare(
      `SELECT * FROM events WHERE instance_id = ? AND aggregate_type = ? AND aggregate_id = ? AND sequence > ?
       ORDER BY sequence`,
    ),
    log: db.prepare("SELECT * FROM events WHERE instance_id = ? AND position > ? ORDER BY position LIMIT ?"),
    insert: db.prepare(
      `INSERT INTO events (instance_id, aggregate_type, aggregate_id, sequence, event_type, payload, creator, owner, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    instance: db.prepare("SELECT id, name, default_org_id FROM instances LIMIT 1"),
    user: db.prepare("SELECT state FROM users WHERE instance_id = ? AND id = ?"),
    org: db.prepare("SELECT id, name FROM orgs WHERE instance_id = ? AND id = ?"),
    token: db.prepare(
      "SELECT token_id, user_id, expires_at FROM tokens WHERE instance_id = ? AND token_hash = ?",
    ),
    members: db.prepare(
      "SELECT scope_kind, scope_id, roles FROM members WHERE instance_id = ? AND user_id = ?",
    ),
    latest: db.prepare(
      `SELECT * FROM events WHERE instance_id = ? AND aggregate_type = ? AND aggregate_id = ?
       ORDER BY sequence DESC LIMIT ?`,
    ),
    putUser: db.prepare(
      `INSERT INTO users (instance_id, id, org_id, username, deleted, sequence, state, ${searchColumnNames})
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (instance_id, id) DO UPDATE SET org_id = excluded.org_id, username = excluded.username,
         deleted = excluded.deleted, sequence = excluded.sequence, state = excluded.state,
         kind = excluded.kind, user_state = excluded.user_state, email = excluded.email, phone = excluded.phone,
         given_name = excluded.given_name, family_name = excluded.family_name,
         nick_name = excluded.nick_name, display_name = excluded.display_name,
         created_at = excluded.created_at`,
    ),
    // A change that leaves every indexed and searched column as it was (most do: a factor
    // added, a code sent) rewrites the row only, not the four index entries the upsert would.
    putUserState: db.prepare(
      `UPDATE users SET sequence = ?, state = ?
       WHERE instance_id = ? AND id = ? AND org_id IS ? AND username IS ? AND deleted = ?
         AND ${searchColumnNames
           .split(", ")
           .map((c) => `${c} IS ?`)
           .join(" AND ")}`,
    ),
    putToken: db.prepare("INSERT INTO tokens VALUES (?, ?, ?, ?, ?)"),
    deleteToken: db.prepare("DELETE FROM tokens WHERE instance_id = ? AND token_id = ?"),
    deleteTokensOfUser: db.prepare("DELETE FROM tokens WHERE instance_id = ? AND user_id = ?"),
    putMember: db.prepare(
      `INSERT INTO members VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (instance_id, user_id, scope_id) DO UPDATE SET roles = excluded.roles`,
    ),
    deleteMember: db.prepare("DELETE FROM members WHERE instance_id = ? AND user_id = ? AND scope_id = ?"),
    deleteMembersOfUser: db.prepare("DELETE FROM members WHERE instance_id = ? AND user_id = ?"),
    putOrg: db.prepare(
      `INSERT INTO orgs VALUES (?, ?, ?, ?)
       ON CONFLICT (instance_id, id) DO UPDATE SET name = excluded.name, sequence = excluded.sequence`,
    ),
    quotaUses: db.prepare(
      "SELECT used_at FROM sms_quota_use WHERE instance_id = ? AND key = ? AND used_at > ? ORDER BY used_at",
    ),
    useQuota: db.prepare("INSERT INTO sms_quota_use VALUES (?, ?, ?, ?)"),
    enqueue: db.prepare(
      `INSERT INTO sms_outbox (instance_id, id, user_id, type, recipient, language, sealed_text, created_at,
         expires_at, status, attempts, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)`,
    ),
    settle: db.prepare(
      `UPDATE sms_outbox SET status = ?, sealed_text = NULL, settled_at = ?, note = ?, provider_message_id = ?,
         claim = NULL
       WHERE instance_id = ? AND id = ? AND claim = ? AND status = 'sending'`,
    ),
    // Two halves rather than one OR, so that each searches sms_outbox_due instead of reading
    // every message the instance ever sent (settled rows are kept for a week).
    due: db.prepare(
      `SELECT * FROM sms_outbox WHERE instance_id = @instance AND status = 'pending'
         AND next_attempt_at <= @now AND next_attempt_at >= @from
       UNION ALL
       SELECT * FROM sms_outbox WHERE instance_id = @instance AND status = 'sending' AND claimed_at < @stale
         AND next_attempt_at >= @from
       ORDER BY next_attempt_at, seq LIMIT @limit`,
    ),
    claim: db.prepare(
      "UPDATE sms_outbox SET status = 'sending', claim = ?, claimed_at = ?, attempts = ? WHERE seq = ?",
    ),
    retry: db.prepare(
      `UPDATE sms_outbox SET status = 'pending', next_attempt_at = ?, note = ?, claim = NULL, claimed_at = NULL
       WHERE instance_id = ? AND id = ? AND claim = ? AND status = 'sending'`,
    ),
    outboxOf: db.prepare("SELECT * FROM sms_outbox WHERE instance_id = ? AND user_id = ? ORDER BY seq"),
    pruneSettled: db.prepare(
      "DELETE FROM sms_outbox WHERE instance_id = ? AND settled_at IS NOT NULL AND settled_at < ?",
    ),
    pruneQuota: db.prepare("DELETE FROM sms_quota_use WHERE instance_id = ? AND used_at < ?"),
    userByLoginName: db.prepare(
      "SELECT id FROM users WHERE instance_id = ? AND lk_lower(username) = lk_lower(?) AND deleted = 0",
    ),
    session: db.prepare("SELECT state FROM sessions WHERE instance_id = ? AND id = ?"),
    sessionsOfUser: db.prepare("SELECT state FROM sessions WHERE instance_id = ? AND user_id = ?"),
    putSession: db.prepare(
      `INSERT INTO sessions (instance_id, id, user_id, creator, created_at, state) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (instance_id, id) DO UPDATE SET user_id = excluded.user_id, state = excluded.state`,
    ),
    deleteSession: db.prepare("DELETE FROM sessions WHERE instance_id = ? AND id = ?"),
    putInstance: db.prepare(
      `INSERT INTO instances VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, default_org_id = excluded.default_org_id`,
    ),
  };

  function applyChange(instanceId: string, c: ReadModelChange): void {
    switch (c.kind) {
      case "user.put": {
        const state = JSON.stringify(c.user);
        const deleted = c.user.deleted ? 1 : 0;
        const search = searchColumns(c.user);
        const { id, orgId, username, sequence } = c.user;
        if (
          q.putUserState.run(sequence, state, instanceId, id, orgId, username, deleted, ...search).changes ===
          0
        )
          q.putUser.run(instanceId, id, orgId, username, deleted, sequence, state, ...search);
        return;
      }
      case "token.put":
        q.putToken.run(instanceId, c.tokenId, c.tokenHash, c.userId, c.expiresAt);
        return;
      case "token.delete":
        q.deleteToken.run(instanceId, c.tokenId);
        return;
      case "token.deleteOfUser":
        q.deleteTokensOfUser.run(instanceId, c.userId);
        return;
      case "member.put": {
        const s = c.membership.scope;
        const scopeId = s.kind === "instance" ? instanceId : s.orgId;
        q.putMember.run(instanceId, c.userId, s.kind, scopeId, JSON.stringify(c.membership.roles));
        return;
      }
      case "member.delete":
        q.deleteMember.run(instanceId, c.userId, c.scopeId);
        return;
      case "member.deleteOfUser":
        q.deleteMembersOfUser.run(instanceId, c.userId);
        return;
      case "org.put":
        q.putOrg.run(instanceId, c.id, c.name, c.sequence);
        return;
      case "instance.put":
        q.putInstance.run(c.id, c.name, c.defaultOrgId);
        return;
      case "session.put":
        q.putSession.run(
          instanceId,
          c.session.id,
          c.session.userId,
          c.session.creator,
          c.session.createdAt ?? "",
          JSON.stringify(c.session),
        );
        return;
      case "session.delete":
        q.deleteSession.run(instanceId, c.sessionId);
        return;
    }
  }

  // Inside the append's IMMEDIATE transaction, which holds the database's write lock: no other
  // writer, on this node or another, can count or add between the count and the insert.
  function applyOutbox(instanceId: string, at: Date, c: OutboxChange): void {
    const atIso = at.toISOString();
    if (c.kind === "settle") {
      const info = q.settle.run(c.status, atIso, c.note, c.providerMessageId, instanceId, c.id, c.claim);
      if (info.changes === 0) throw new OutboxClaimLost(`outbox message ${c.id} is no longer claimed`);
      return;
    }
    let refusal: QuotaExceeded | null = null;
    for (const quota of c.quotas) {
      const since = new Date(at.getTime() - quota.windowMs).toISOString();
      const uses = q.quotaUses.all(instanceId, quota.key, since) as { used_at: string }[];
      const exceeded = quotaRefusal(
        quota,
        uses.map((u) => new Date(u.used_at)),
        at,
      );
      if (exceeded && (!refusal || exceeded.retryAfterMs > refusal.retryAfterMs)) refusal = exceeded;
    }
    if (refusal) throw refusal;
    const m = c.message;
    for (const quota of c.quotas) q.useQuota.run(instanceId, quota.key, atIso, m.id);
    q.enqueue.run(
      instanceId,
      m.id,
      m.userId,
      m.type,
      m.to,
      m.language,
      m.sealedText,
      atIso,
      m.expiresAt?.toISOString() ?? null,
      atIso,
    );
  }

  const claimTx = db.transaction(
    (
      instanceId: string,
      { now, staleBefore, limit, dueFrom }: Parameters<Store["claimOutbox"]>[1],
    ): ClaimedMessage[] => {
      const nowIso = now.toISOString();
      const rows = q.due.all({
        instance: instanceId,
        now: nowIso,
        stale: staleBefore.toISOString(),
        limit,
        // Times are stored as ISO strings, which sort as the times do; "" sorts before all.
        from: dueFrom?.toISOString() ?? "",
      }) as OutboxDbRow[];
      return rows.map((r) => {
        const abandoned = r.status === "sending";
        const attempt = abandoned ? r.attempts : r.attempts + 1;
        const claim = randomUUID();
        q.claim.run(claim, nowIso, attempt, r.seq);
        return {
          id: r.id,
          userId: r.user_id,
          type: r.type as SmsType,
          to: r.recipient,
          language: r.language,
          sealedText: r.sealed_text ?? "",
          expiresAt: r.expires_at === null ? null : new Date(r.expires_at),
          createdAt: new Date(r.created_at),
          dueAt: new Date(r.next_attempt_at),
          attempt,
          claim,
          abandoned,
        };
      });
    },
  );

  const appendTx = db.transaction((req: AppendRequest): RecordedEvent[] => {
    const recorded: RecordedEvent[] = [];
    const createdAt = req.createdAt.toISOString();
    for (const w of req.writes) {
      let sequence = w.expectedSequence;
      for (const e of w.events) {
        sequence += 1;
        const payload = e.payload === null ? null : JSON.stringify(e.payload);
        let position: number;
        try {
          const info = q.insert.run(
            req.instanceId,
            w.ref.type,
            w.ref.id,
            sequence,
            e.type,
            payload,
            req.creator,
            w.owner,
            createdAt,
          );
          position = Number(info.lastInsertRowid);
        } catch (err) {
          if (isUnique(err))
            throw new ConcurrencyError(`${w.ref.type} ${w.ref.id} moved past ${w.expectedSequence}`);
          throw err;
        }
        recorded.push(recordedIn(req, w, e, sequence, position));
      }
    }
    for (const c of req.readModel) {
      try {
        applyChange(req.instanceId, c);
      } catch (err) {
        if (isUnique(err) && c.kind === "user.put") throw new UniqueViolation("username");
        if (isUnique(err) && c.kind === "instance.put") throw new UniqueViolation("instance");
        throw err;
      }
    }
    for (const c of req.outbox ?? []) applyOutbox(req.instanceId, req.createdAt, c);
    return recorded;
  });

  const grouped = groupCommit(db);

  const userOf = (instanceId: string, userId: string): UserState | null => {
    const r = q.user.get(instanceId, userId) as { state: string } | undefined;
    return r ? upgradeUser(JSON.parse(r.state) as UserState) : null;
  };
  const membershipsOfUser = (instanceId: string, userId: string): Membership[] => {
    const rows = q.members.all(instanceId, userId) as {
      scope_kind: string;
      scope_id: string;
      roles: string;
    }[];
    return rows.map((r) => ({
      scope: r.scope_kind === "instance" ? { kind: "instance" } : { kind: "org", orgId: r.scope_id },
      roles: JSON.parse(r.roles) as string[],
    }));
  };
  // Reads that go together, in one read transaction: they see the same moment even when another
  // process writes to the file in between.
  const tokenHolderTx = db.transaction((instanceId: string, tokenHash: string): TokenHolder | null => {
    const r = q.token.get(instanceId, tokenHash) as
      | { token_id: string; user_id: string; expires_at: string | null }
      | undefined;
    if (!r) return null;
    return {
      token: { tokenId: r.token_id, userId: r.user_id, expiresAt: r.expires_at },
      user: userOf(instanceId, r.user_id),
      memberships: membershipsOfUser(instanceId, r.user_id),
    };
  });
  const userWithTailTx = db.transaction((instanceId: string, userId: string): UserWithTail => {
    const snapshot = userOf(instanceId, userId);
    const tail = q.load.all(instanceId, "user", userId, snapshot?.sequence ?? 0) as EventRow[];
    return { snapshot, tail: tail.map(toEvent) };
  });

  const dataVersion = db.prepare("PRAGMA data_version").pluck();
  const cache = new ReadCache(() => dataVersion.get() as number, keptUsers);
  // The caller of fresh() checked the cache is current.
  const keptUserWithTail = (instanceId: string, userId: string): UserWithTail => {
    const kept = cache.user(instanceId, userId);
    if (kept) return { snapshot: kept, tail: [] };
    const loaded = userWithTailTx(instanceId, userId);
    if (loaded.snapshot && loaded.tail.length === 0) cache.keepUser(instanceId, loaded.snapshot);
    return loaded;
  };

  return {
    dialect: "sqlite",
    async loadEvents(instanceId: string, ref: AggregateRef, afterSequence: number) {
      return (q.load.all(instanceId, ref.type, ref.id, afterSequence) as EventRow[]).map(toEvent);
    },
    append(req: AppendRequest) {
      return grouped(() => appendTx(req), {
        committed: () => cache.afterAppend(req),
        background: req.background === true,
      });
    },
    async latestEvents(instanceId: string, ref: AggregateRef, limit: number) {
      return (q.latest.all(instanceId, ref.type, ref.id, limit) as EventRow[]).map(toEvent);
    },
    async readLog(instanceId: string, afterPosition: number, limit: number) {
      return (q.log.all(instanceId, afterPosition, limit) as EventRow[]).map(toEvent);
    },
    async getInstance(): Promise<InstanceRow | null> {
      const r = q.instance.get() as { id: string; name: string; default_org_id: string } | undefined;
      return r ? { id: r.id, name: r.name, defaultOrgId: r.default_org_id } : null;
    },
    async getUser(instanceId: string, userId: string): Promise<UserState | null> {
      cache.fresh();
      return cache.user(instanceId, userId) ?? userOf(instanceId, userId);
    },
    async loadUser(instanceId: string, userId: string): Promise<UserWithTail> {
      cache.fresh();
      return keptUserWithTail(instanceId, userId);
    },
    async searchUsers(instanceId: string, search: UserSearch): Promise<UserPage> {
      const { count, page } = userSearchStatements(instanceId, search, "sqlite");
      // One read transaction: the total and the page see the same data.
      return db.transaction(() => {
        const { total } = db.prepare(count.text).get(...count.values) as { total: number };
        const rows = db.prepare(page.text).all(...page.values) as { state: string }[];
        return { total, users: rows.map((r) => JSON.parse(r.state) as UserState) };
      })();
    },
    async getOrg(instanceId: string, orgId: string): Promise<OrgRow | null> {
      return (q.org.get(instanceId, orgId) as OrgRow | undefined) ?? null;
    },
    async findTokenHolder(instanceId: string, tokenHash: string): Promise<TokenHolder | null> {
      cache.fresh();
      const kept = cache.token(instanceId, tokenHash);
      if (!kept) {
        const found = tokenHolderTx(instanceId, tokenHash);
        if (found)
          cache.keepToken(instanceId, tokenHash, { token: found.token, memberships: found.memberships });
        return found;
      }
      // The row, as read without the cache; kept only when no events follow it.
      const user = keptUserWithTail(instanceId, kept.token.userId).snapshot;
      return { token: kept.token, user, memberships: kept.memberships };
    },
    async membershipsOf(instanceId: string, userId: string): Promise<Membership[]> {
      return membershipsOfUser(instanceId, userId);
    },
    claimOutbox(instanceId, options) {
      return grouped(() => claimTx(instanceId, options));
    },
    async retryOutbox(instanceId, id, claim, nextAttemptAt, note) {
      return q.retry.run(nextAttemptAt.toISOString(), note, instanceId, id, claim).changes > 0;
    },
    async outboxOf(instanceId, userId) {
      return (q.outboxOf.all(instanceId, userId) as OutboxDbRow[]).map(toOutboxRow);
    },
    async pruneOutbox(instanceId, settledBefore, countedBefore) {
      db.transaction(() => {
        q.pruneSettled.run(instanceId, settledBefore.toISOString());
        q.pruneQuota.run(instanceId, countedBefore.toISOString());
      }).immediate();
    },
    async snapshot<T>(instanceId: string, read: (view: Snapshot) => Promise<T>): Promise<T> {
      // An in-memory database has no second connection to read from; it serves tests only.
      if (path === ":memory:") return read(snapshotOn(db, instanceId));
      // A connection of its own: a transaction held open across awaits on the store's connection
      // would swallow the appends made meanwhile. Under WAL, its first read fixes what it sees.
      const reader = new Database(path, { readonly: true, fileMustExist: true });
      registerFunctions(reader);
      try {
        reader.pragma("busy_timeout = 5000");
        reader.exec("BEGIN");
        const result = await read(snapshotOn(reader, instanceId));
        reader.exec("COMMIT");
        return result;
      } finally {
        reader.close();
      }
    },
    poolStats() {
      return null;
    },
    async userIdByLoginName(instanceId: string, loginName: string): Promise<string | null> {
      const r = q.userByLoginName.get(instanceId, loginName) as { id: string } | undefined;
      return r?.id ?? null;
    },
    async getSession(instanceId: string, sessionId: string): Promise<SessionState | null> {
      const r = q.session.get(instanceId, sessionId) as { state: string } | undefined;
      return r ? (JSON.parse(r.state) as SessionState) : null;
    },
    async sessionsOfUser(instanceId: string, userId: string): Promise<SessionState[]> {
      return (q.sessionsOfUser.all(instanceId, userId) as { state: string }[]).map(
        (r) => JSON.parse(r.state) as SessionState,
      );
    },
    async listSessions(instanceId: string, query: SessionQuery) {
      const where = ["instance_id = ?"];
      const args: unknown[] = [instanceId];
      if (query.visibleTo !== null) {
        const { userId, orgIds } = query.visibleTo;
        const inOrgs =
          orgIds.length === 0
            ? ""
            : ` OR user_id IN (SELECT id FROM users WHERE instance_id = ? AND org_id IN (${orgIds.map(() => "?").join(", ")}))`;
        where.push(`(creator = ? OR user_id = ?${inOrgs})`);
        args.push(userId, userId, ...(orgIds.length === 0 ? [] : [instanceId, ...orgIds]));
      }
      if (query.userId !== undefined) {
        where.push("user_id = ?");
        args.push(query.userId);
      }
      if (query.creator !== undefined) {
        where.push("creator = ?");
        args.push(query.creator);
      }
      if (query.ids !== undefined) {
        where.push(`id IN (${query.ids.map(() => "?").join(", ") || "NULL"})`);
        args.push(...query.ids);
      }
      const filter = where.join(" AND ");
      const total = (
        db.prepare(`SELECT count(*) AS n FROM sessions WHERE ${filter}`).get(...args) as { n: number }
      ).n;
      const rows = db
        .prepare(
          `SELECT state FROM sessions WHERE ${filter} ORDER BY created_at ${query.ascending ? "ASC" : "DESC"}, id
           LIMIT ? OFFSET ?`,
        )
        .all(...args, query.limit, query.offset) as { state: string }[];
      return { total, sessions: rows.map((r) => JSON.parse(r.state) as SessionState) };
    },
    async ping() {
      db.prepare("SELECT 1").get();
    },
    async close() {
      await grouped(() => undefined);
      db.close();
    },
  };
}
