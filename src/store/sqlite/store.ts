import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import {
  type AppendRequest,
  ConcurrencyError,
  type InstanceRow,
  type OrgRow,
  type ReadModelChange,
  type Store,
  type TokenRow,
  UniqueViolation,
} from "../../app/ports.ts";
import type { AggregateRef, AggregateType, RecordedEvent } from "../../domain/events.ts";
import type { Membership } from "../../domain/permissions.ts";
import type { UserState } from "../../domain/user/state.ts";
import { sqliteMigrations } from "./migrations.ts";

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
        db.exec(m.sql);
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

export function openSqliteStore(path: string): Store {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  // FULL: a write acknowledged to a client survives a power cut, not only a process crash.
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  runSqliteMigrations(db);

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
    putUser: db.prepare(
      `INSERT INTO users (instance_id, id, org_id, username, deleted, sequence, state) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (instance_id, id) DO UPDATE SET org_id = excluded.org_id, username = excluded.username,
         deleted = excluded.deleted, sequence = excluded.sequence, state = excluded.state`,
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
    putInstance: db.prepare(
      `INSERT INTO instances VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, default_org_id = excluded.default_org_id`,
    ),
  };

  function applyChange(instanceId: string, c: ReadModelChange): void {
    switch (c.kind) {
      case "user.put":
        q.putUser.run(
          instanceId,
          c.user.id,
          c.user.orgId,
          c.user.username,
          c.user.deleted ? 1 : 0,
          c.user.sequence,
          JSON.stringify(c.user),
        );
        return;
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
    }
  }

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
        recorded.push({
          ...e,
          aggregateType: w.ref.type,
          aggregateId: w.ref.id,
          sequence,
          owner: w.owner,
          creator: req.creator,
          createdAt: req.createdAt,
          position,
        });
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
    return recorded;
  });

  return {
    dialect: "sqlite",
    async loadEvents(instanceId: string, ref: AggregateRef, afterSequence: number) {
      return (q.load.all(instanceId, ref.type, ref.id, afterSequence) as EventRow[]).map(toEvent);
    },
    async append(req: AppendRequest) {
      return appendTx.immediate(req);
    },
    async readLog(instanceId: string, afterPosition: number, limit: number) {
      return (q.log.all(instanceId, afterPosition, limit) as EventRow[]).map(toEvent);
    },
    async getInstance(): Promise<InstanceRow | null> {
      const r = q.instance.get() as { id: string; name: string; default_org_id: string } | undefined;
      return r ? { id: r.id, name: r.name, defaultOrgId: r.default_org_id } : null;
    },
    async getUser(instanceId: string, userId: string): Promise<UserState | null> {
      const r = q.user.get(instanceId, userId) as { state: string } | undefined;
      return r ? (JSON.parse(r.state) as UserState) : null;
    },
    async getOrg(instanceId: string, orgId: string): Promise<OrgRow | null> {
      return (q.org.get(instanceId, orgId) as OrgRow | undefined) ?? null;
    },
    async findToken(instanceId: string, tokenHash: string): Promise<TokenRow | null> {
      const r = q.token.get(instanceId, tokenHash) as
        | { token_id: string; user_id: string; expires_at: string | null }
        | undefined;
      return r ? { tokenId: r.token_id, userId: r.user_id, expiresAt: r.expires_at } : null;
    },
    async membershipsOf(instanceId: string, userId: string): Promise<Membership[]> {
      const rows = q.members.all(instanceId, userId) as {
        scope_kind: string;
        scope_id: string;
        roles: string;
      }[];
      return rows.map((r) => ({
        scope: r.scope_kind === "instance" ? { kind: "instance" } : { kind: "org", orgId: r.scope_id },
        roles: JSON.parse(r.roles) as string[],
      }));
    },
    async ping() {
      db.prepare("SELECT 1").get();
    },
    async close() {
      db.close();
    },
  };
}
