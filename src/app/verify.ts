import { isDeepStrictEqual } from "node:util";
import type { RecordedEvent } from "../domain/events.ts";
import { emptyResource, foldResource, type ResourceState } from "../domain/resource/state.ts";
import { emptySession, foldSession, type SessionState } from "../domain/session/state.ts";
import { emptyUser, foldUser, type UserState } from "../domain/user/state.ts";
import type {
  InstanceRow,
  ReadModelChange,
  Snapshot,
  Store,
  StoredMember,
  StoredOrg,
  StoredSession,
  StoredToken,
  StoredUser,
} from "./ports.ts";
import { projectResource, projectSession, projectUser, userSearchFields } from "./projection.ts";

// The event log is the truth; the read models are derived from it in the same transaction.
// Verify rebuilds them from the log with the folds and projections the commands use, and
// lists every way the stored ones differ, along with every break in an aggregate's sequence.

export interface Difference {
  readonly model: "events" | "users" | "tokens" | "members" | "orgs" | "instance" | "sessions";
  // The aggregate (`user/<id>`) or the read-model row the difference is about.
  readonly key: string;
  readonly problem: "gap" | "missing" | "unexpected" | "differs";
  readonly detail: string;
}

export interface VerifyReport {
  // null when the database holds no instance, which is then the one difference.
  readonly instanceId: string | null;
  readonly events: number;
  readonly aggregates: number;
  readonly rows: number;
  readonly differences: readonly Difference[];
}

const pageSize = 1000;

const memberKey = (userId: string, scopeId: string) => `${userId} in ${scopeId}`;

// The read models as the log says they must be: the changes the adapters apply, applied to maps.
class Rebuilt {
  readonly users = new Map<string, UserState>();
  readonly tokens = new Map<string, StoredToken>();
  readonly members = new Map<string, StoredMember>();
  readonly orgs = new Map<string, StoredOrg>();
  readonly sessions = new Map<string, SessionState>();
  instance: InstanceRow | null = null;

  constructor(private readonly instanceId: string) {}

  apply(c: ReadModelChange): void {
    switch (c.kind) {
      case "user.put":
        this.users.set(c.user.id, c.user);
        return;
      case "token.put":
        this.tokens.set(c.tokenId, {
          tokenId: c.tokenId,
          tokenHash: c.tokenHash,
          userId: c.userId,
          expiresAt: c.expiresAt,
        });
        return;
      case "token.delete":
        this.tokens.delete(c.tokenId);
        return;
      case "token.deleteOfUser":
        for (const [id, t] of this.tokens) if (t.userId === c.userId) this.tokens.delete(id);
        return;
      case "member.put": {
        const scope = c.membership.scope;
        const scopeId = scope.kind === "instance" ? this.instanceId : scope.orgId;
        this.members.set(memberKey(c.userId, scopeId), {
          userId: c.userId,
          scopeKind: scope.kind,
          scopeId,
          roles: c.membership.roles,
        });
        return;
      }
      case "member.delete":
        this.members.delete(memberKey(c.userId, c.scopeId));
        return;
      case "member.deleteOfUser":
        for (const [key, m] of this.members) if (m.userId === c.userId) this.members.delete(key);
        return;
      case "org.put":
        this.orgs.set(c.id, { id: c.id, name: c.name, sequence: c.sequence });
        return;
      case "instance.put":
        this.instance = { id: c.id, name: c.name, defaultOrgId: c.defaultOrgId };
        return;
      case "session.put":
        this.sessions.set(c.session.id, c.session);
        return;
      case "session.delete":
        this.sessions.delete(c.sessionId);
        return;
    }
  }
}

// Folds the log event by event in log order, checking that every aggregate counts 1, 2, 3, ...
async function rebuild(view: Snapshot, instanceId: string, differences: Difference[]) {
  const rebuilt = new Rebuilt(instanceId);
  const users = new Map<string, UserState>();
  const resources = new Map<string, ResourceState>();
  const sessions = new Map<string, SessionState>();
  const lastSequence = new Map<string, number>();
  let events = 0;

  const changesOf = (e: RecordedEvent, key: string): ReadModelChange[] => {
    const id = e.aggregateId;
    switch (e.aggregateType) {
      case "user": {
        const state = foldUser(users.get(id) ?? emptyUser(id), [e]);
        users.set(id, state);
        return projectUser(state, [e]);
      }
      case "org":
      case "instance": {
        const state = foldResource(resources.get(key) ?? emptyResource(e.aggregateType, id), [e]);
        resources.set(key, state);
        return projectResource(state, [e], instanceId);
      }
      case "session": {
        const state = foldSession(sessions.get(id) ?? emptySession(id), [e]);
        sessions.set(id, state);
        return projectSession(state);
      }
      default:
        differences.push({
          model: "events",
          key,
          problem: "unexpected",
          detail: `unknown aggregate type at position ${e.position}`,
        });
        return [];
    }
  };

  for (let after = 0; ; ) {
    const page = await view.readLog(after, pageSize);
    if (page.length === 0) break;
    for (const e of page) {
      events += 1;
      const key = `${e.aggregateType}/${e.aggregateId}`;
      const last = lastSequence.get(key) ?? 0;
      if (e.sequence !== last + 1)
        differences.push({
          model: "events",
          key,
          problem: "gap",
          detail:
            last === 0
              ? `starts at sequence ${e.sequence} instead of 1 (position ${e.position})`
              : `sequence ${e.sequence} follows ${last} (position ${e.position})`,
        });
      lastSequence.set(key, e.sequence);
      for (const c of changesOf(e, key)) rebuilt.apply(c);
    }
    after = page.at(-1)!.position;
  }
  return { rebuilt, events, aggregates: lastSequence.size };
}

// Values as a report shows them: hashes are not secrets, but no report needs to carry them.
const shown = (v: unknown) =>
  v === undefined ? "nothing" : JSON.stringify(v, (k, x) => (/hash/i.test(k) ? "(hidden)" : x));

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

// "state.otpSms: expected false, found true; sequence: expected 4, found 3"
function fieldDifferences(expected: unknown, found: unknown, path = ""): string[] {
  if (isDeepStrictEqual(expected, found)) return [];
  if (isRecord(expected) && isRecord(found)) {
    const keys = new Set([...Object.keys(expected), ...Object.keys(found)]);
    return [...keys].flatMap((k) => fieldDifferences(expected[k], found[k], path ? `${path}.${k}` : k));
  }
  if (/hash$/i.test(path)) return [`${path} differs`];
  return [`${path}: expected ${shown(expected)}, found ${shown(found)}`];
}

// Holds stored rows against rebuilt ones by key: what is only rebuilt is missing, what is only
// stored is unexpected, what is in both must be equal.
function compareRows<R>(
  model: Difference["model"],
  expected: ReadonlyMap<string, R>,
  stored: Iterable<readonly [string, R]>,
  differences: Difference[],
): number {
  const pending = new Map(expected);
  let rows = 0;
  for (const [key, row] of stored) {
    rows += 1;
    const want = pending.get(key);
    pending.delete(key);
    if (want === undefined) {
      differences.push({ model, key, problem: "unexpected", detail: "stored, but no event leads to it" });
      continue;
    }
    const fields = fieldDifferences(want, row);
    if (fields.length > 0) differences.push({ model, key, problem: "differs", detail: fields.join("; ") });
  }
  for (const key of pending.keys())
    differences.push({
      model,
      key,
      problem: "missing",
      detail: "the events lead to it, but it is not stored",
    });
  return rows;
}

const asStoredUser = (state: UserState): StoredUser => ({
  id: state.id,
  state,
  orgId: state.orgId,
  username: state.username,
  deleted: state.deleted,
  sequence: state.sequence,
  search: userSearchFields(state),
});

const asStoredSession = (state: SessionState): StoredSession => ({
  id: state.id,
  state,
  userId: state.userId,
  creator: state.creator,
  createdAt: state.createdAt ?? "",
});

async function allUsers(view: Snapshot): Promise<[string, StoredUser][]> {
  const rows: [string, StoredUser][] = [];
  for (let after = ""; ; ) {
    const page = await view.listUsers(after, pageSize);
    if (page.length === 0) return rows;
    for (const u of page) rows.push([u.id, u]);
    after = page.at(-1)!.id;
  }
}

async function verifyInstance(view: Snapshot, instanceId: string): Promise<VerifyReport> {
  const differences: Difference[] = [];
  const { rebuilt, events, aggregates } = await rebuild(view, instanceId, differences);

  let rows = compareRows(
    "users",
    new Map([...rebuilt.users].map(([id, s]) => [id, asStoredUser(s)])),
    await allUsers(view),
    differences,
  );
  rows += compareRows(
    "tokens",
    rebuilt.tokens,
    (await view.listTokens()).map((t) => [t.tokenId, t] as const),
    differences,
  );
  rows += compareRows(
    "members",
    rebuilt.members,
    (await view.listMembers()).map((m) => [memberKey(m.userId, m.scopeId), m] as const),
    differences,
  );
  rows += compareRows(
    "orgs",
    rebuilt.orgs,
    (await view.listOrgs()).map((o) => [o.id, o] as const),
    differences,
  );
  rows += compareRows(
    "sessions",
    new Map([...rebuilt.sessions].map(([id, s]) => [id, asStoredSession(s)])),
    (await view.listSessions()).map((s) => [s.id, s] as const),
    differences,
  );
  const instance = await view.getInstance();
  rows += compareRows(
    "instance",
    new Map(rebuilt.instance ? [[rebuilt.instance.id, rebuilt.instance]] : []),
    instance ? [[instance.id, instance] as const] : [],
    differences,
  );
  return { instanceId, events, aggregates, rows, differences };
}

// Safe to run while nodes serve: the log and the read models are read as of one moment.
export async function verify(store: Store): Promise<VerifyReport> {
  const instance = await store.getInstance();
  if (!instance)
    return {
      instanceId: null,
      events: 0,
      aggregates: 0,
      rows: 0,
      differences: [
        {
          model: "instance",
          key: "-",
          problem: "missing",
          detail: "the database holds no Latchkey instance: no node has started on it, or its row is gone",
        },
      ],
    };
  return store.snapshot(instance.id, (view) => verifyInstance(view, instance.id));
}

export function formatReport(report: VerifyReport): string {
  const lines = [
    report.instanceId === null
      ? "No instance found."
      : `Instance ${report.instanceId}: ${report.events} events in ${report.aggregates} aggregates, ` +
        `${report.rows} read-model rows compared.`,
  ];
  if (report.differences.length === 0)
    lines.push("OK: every sequence is gap-free and every read model equals the fold of the event log.");
  else {
    const n = report.differences.length;
    lines.push(`${n} difference${n === 1 ? "" : "s"}:`);
    for (const d of report.differences) lines.push(`  ${d.model} ${d.key}: ${d.problem}: ${d.detail}`);
  }
  return `${lines.join("\n")}\n`;
}
