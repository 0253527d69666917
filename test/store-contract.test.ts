// The storage contract: every adapter behind the Store port passes the same suite, on a real
// database of its kind. Test data is made the way the application makes it: domain decisions,
// stamped, folded and projected into read-model changes.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { newId } from "../src/app/ids.ts";
import {
  type AppendRequest,
  type ClaimedMessage,
  ConcurrencyError,
  type OutboxChange,
  OutboxClaimLost,
  type OutboxMessage,
  QuotaExceeded,
  type SendQuota,
  type Store,
  type TextMethod,
  UniqueViolation,
  type UserFilter,
  type UserSearch,
  type UserTextField,
} from "../src/app/ports.ts";
import { projectResource, projectSession, projectUser, userSearchFields } from "../src/app/projection.ts";
import { hashToken, newToken } from "../src/app/secrets.ts";
import { stamp } from "../src/app/transact.ts";
import type { DatabaseConfig } from "../src/config.ts";
import type { AggregateRef, Decision, RecordedEvent } from "../src/domain/events.ts";
import * as resource from "../src/domain/resource/decide.ts";
import {
  emptyResource,
  foldResource,
  type ResourceState,
  resourceEvent,
} from "../src/domain/resource/state.ts";
import { signInStep, terminateSession } from "../src/domain/session/decide.ts";
import { emptySession, foldSession, type SessionState } from "../src/domain/session/state.ts";
import * as user from "../src/domain/user/decide.ts";
import type { Profile } from "../src/domain/user/events.ts";
import { emptyUser, foldUser, type UserState } from "../src/domain/user/state.ts";
import { openStore } from "../src/store/open.ts";
import { postgresMigrations } from "../src/store/postgres/migrations.ts";
import { sqliteMigrations } from "../src/store/sqlite/migrations.ts";
import { databaseKinds, freshDatabase, type TestDatabase } from "./support/databases.ts";

// ---- Building appends the way the application does -------------------------------------------

interface Planned<S> {
  readonly request: AppendRequest;
  // The state the read models will hold once the append is stored.
  readonly after: S;
}

let clock = Date.parse("2024-05-06T07:08:09.123Z");
// Distinct instants with milliseconds, so a store that rounds or shifts time zones is caught.
function tick(): Date {
  clock += 1001;
  return new Date(clock);
}

function userPlan(
  instanceId: string,
  before: UserState,
  decide: (s: UserState) => Decision,
): Planned<UserState> {
  const decision = decide(before);
  const createdAt = tick();
  const creator = `creator-${before.id}`;
  const ref: AggregateRef = { type: "user", id: before.id };
  const owner = before.orgId;
  const stamped = stamp(ref, owner, creator, before.sequence, createdAt, decision.events);
  const after = foldUser(before, stamped);
  return {
    request: {
      instanceId,
      creator,
      createdAt,
      writes: [{ ref, owner, expectedSequence: before.sequence, events: decision.events }],
      readModel: projectUser(after, stamped),
    },
    after,
  };
}

function newUserPlan(instanceId: string, orgId: string, decide: (s: UserState) => Decision, id = newId()) {
  const decision = decide(emptyUser(id));
  const createdAt = tick();
  const ref: AggregateRef = { type: "user", id };
  const stamped = stamp(ref, orgId, "creator", 0, createdAt, decision.events);
  const after = foldUser(emptyUser(id), stamped);
  return {
    request: {
      instanceId,
      creator: "creator",
      createdAt,
      writes: [{ ref, owner: orgId, expectedSequence: 0, events: decision.events }],
      readModel: projectUser(after, stamped),
    } satisfies AppendRequest,
    after,
  };
}

function resourcePlan(
  instanceId: string,
  before: ResourceState,
  decide: (s: ResourceState) => Decision,
): Planned<ResourceState> {
  const decision = decide(before);
  const createdAt = tick();
  const ref: AggregateRef = { type: before.kind, id: before.id };
  const stamped = stamp(ref, before.id, "creator", before.sequence, createdAt, decision.events);
  const after = foldResource(before, stamped);
  return {
    request: {
      instanceId,
      creator: "creator",
      createdAt,
      writes: [{ ref, owner: before.id, expectedSequence: before.sequence, events: decision.events }],
      readModel: projectResource(after, stamped, instanceId),
    },
    after,
  };
}

function sessionPlan(
  instanceId: string,
  before: SessionState,
  events: Decision["events"],
  creator = "creator",
): Planned<SessionState> {
  const createdAt = tick();
  const ref: AggregateRef = { type: "session", id: before.id };
  const stamped = stamp(ref, instanceId, creator, before.sequence, createdAt, events);
  const after = foldSession(before, stamped);
  return {
    request: {
      instanceId,
      creator,
      createdAt,
      writes: [{ ref, owner: instanceId, expectedSequence: before.sequence, events }],
      readModel: projectSession(after),
    },
    after,
  };
}

const lockout = { maxPasswordAttempts: 0, maxOtpAttempts: 0 };

// Several plans as one append, as the application does when one command touches several aggregates.
function together(...plans: { request: AppendRequest }[]): AppendRequest {
  const first = plans[0]!.request;
  return {
    ...first,
    writes: plans.flatMap((p) => p.request.writes),
    readModel: plans.flatMap((p) => p.request.readModel),
  };
}

const profile = (familyName: string): Profile => ({
  // Quotes, backslashes, non-Latin script and an astral-plane character in one payload.
  givenName: 'Zoë "Q" O\'Brien \\ 東京 🚀',
  familyName,
  nickName: "",
  displayName: `Zoë ${familyName}`,
  preferredLanguage: "de",
  gender: 2,
});

const human =
  (username: string, phone = true) =>
  (s: UserState) =>
    user.addHuman(s, {
      username,
      profile: profile(username),
      email: `${username}@example.com`,
      emailVerified: true,
      phone: phone ? { phone: "+41791234567", verified: true } : null,
    });

const person =
  (
    username: string,
    o: { email: string; phone?: string; given?: string; family?: string; nick?: string; display?: string },
  ) =>
  (s: UserState) =>
    user.addHuman(s, {
      username,
      profile: {
        givenName: o.given ?? "Given",
        familyName: o.family ?? username,
        nickName: o.nick ?? "",
        displayName: o.display ?? `Given ${username}`,
        preferredLanguage: "",
        gender: 0,
      },
      email: o.email,
      emailVerified: true,
      phone: o.phone ? { phone: o.phone, verified: true } : null,
    });

const machine = (username: string) => (s: UserState) =>
  user.addMachine(s, { username, name: `Machine ${username}`, description: "contract test" });

async function addOrg(store: Store, instanceId: string, name = "Org"): Promise<ResourceState> {
  const plan = resourcePlan(instanceId, emptyResource("org", newId()), (s) => resource.addResource(s, name));
  await store.append(plan.request);
  return plan.after;
}

async function addUser(store: Store, instanceId: string, orgId: string, decide: (s: UserState) => Decision) {
  const plan = newUserPlan(instanceId, orgId, decide);
  await store.append(plan.request);
  return plan.after;
}

async function changeUser(
  store: Store,
  instanceId: string,
  before: UserState,
  decide: (s: UserState) => Decision,
) {
  const plan = userPlan(instanceId, before, decide);
  const recorded = await store.append(plan.request);
  return { after: plan.after, recorded };
}

// The instance, its default org and an admin with a token: what the first start writes.
function bootstrapPlan() {
  const instanceId = newId();
  const org = resourcePlan(instanceId, emptyResource("org", newId()), (s) =>
    resource.addResource(s, "Default"),
  );
  const admin = newUserPlan(instanceId, org.after.id, machine(`admin-${instanceId}`));
  const names = resourceEvent("instance");
  // As bootstrap does: the instance is added, given its default org and its first admin at once.
  const instance = resourcePlan(instanceId, emptyResource("instance", instanceId), (s) => ({
    events: [
      ...resource.addResource(s, "Latchkey").events,
      { type: names.defaultOrgSet, payload: { orgId: org.after.id } },
      { type: names.memberAdded, payload: { userId: admin.after.id, roles: ["IAM_OWNER"] } },
    ],
  }));
  return { instanceId, request: together(instance, org, admin), org: org.after, admin: admin.after };
}

// An SMS as the application queues it: for a user, with a sealed text and an expiry.
function sms(userId: string, over: Partial<OutboxMessage> = {}): OutboxMessage {
  return {
    id: randomUUID(),
    userId,
    type: "phone_verification",
    to: "+41791234567",
    language: "de",
    sealedText: `plain:Ihr Bestätigungscode lautet ${newToken().slice(0, 6)}.`,
    expiresAt: new Date(clock + 600_000),
    ...over,
  };
}

const enqueue = (message: OutboxMessage, quotas: SendQuota[] = []) =>
  ({ kind: "enqueue", message, quotas }) as const satisfies OutboxChange;

// A new user whose creation queues messages to them, as AddHumanUser with sendCode does.
function withOutbox(
  instanceId: string,
  orgId: string,
  name: string,
  at: Date | null,
  ...queued: { message?: Partial<OutboxMessage>; quotas?: SendQuota[] }[]
) {
  const plan = newUserPlan(instanceId, orgId, human(name));
  const outbox = queued.map((q) => enqueue(sms(plan.after.id, q.message), q.quotas));
  return {
    ...plan,
    messages: outbox.map((o) => o.message),
    request: { ...plan.request, ...(at ? { createdAt: at } : {}), outbox },
  };
}

const claimAt = (store: Store, instanceId: string, now: Date, limit = 100, staleBefore = new Date(0)) =>
  store.claimOutbox(instanceId, { now, staleBefore, limit });

const settle = (m: ClaimedMessage, status: "sent" | "failed" = "sent"): OutboxChange => ({
  kind: "settle",
  id: m.id,
  claim: m.claim,
  status,
  note: status,
  providerMessageId: status === "sent" ? `SM${m.id.slice(0, 8)}` : null,
});

const sortMemberships = <T extends { scope: { kind: string; orgId?: string } }>(ms: T[]) =>
  [...ms].sort((a, b) => (a.scope.orgId ?? "").localeCompare(b.scope.orgId ?? ""));

// What schema_migrations says, read past the port: reopening must leave it untouched.
async function migrationRecords(config: DatabaseConfig): Promise<string[]> {
  const query =
    "SELECT version, name, CAST(applied_at AS TEXT) AS applied_at FROM schema_migrations ORDER BY version";
  if (config.kind === "sqlite") {
    const db = new Database(config.path, { readonly: true });
    try {
      return (db.prepare(query).all() as { version: number; name: string; applied_at: string }[]).map(
        (r) => `${r.version} ${r.name} ${r.applied_at}`,
      );
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: config.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ version: number; name: string; applied_at: string }>(query);
    return rows.map((r) => `${r.version} ${r.name} ${r.applied_at}`);
  } finally {
    await client.end();
  }
}

// A database as the first schema left it, holding these users: what an upgrade starts from.
async function writeAtSchemaVersion1(config: DatabaseConfig, instanceId: string, users: UserState[]) {
  const migrations = config.kind === "sqlite" ? sqliteMigrations : postgresMigrations;
  const first = migrations.find((m) => m.version === 1)!;
  const rows = users.map((u) => [
    instanceId,
    u.id,
    u.orgId,
    u.username,
    u.deleted,
    u.sequence,
    JSON.stringify(u),
  ]);
  if (config.kind === "sqlite") {
    const db = new Database(config.path);
    try {
      db.exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
      );
      db.exec(first.sql);
      db.prepare("INSERT INTO schema_migrations VALUES (1, ?, ?)").run(first.name, new Date().toISOString());
      const insert = db.prepare("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)");
      for (const r of rows) insert.run(...r.map((v) => (typeof v === "boolean" ? Number(v) : v)));
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: config.url });
  await client.connect();
  try {
    await client.query(
      "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)",
    );
    await client.query(first.sql);
    await client.query("INSERT INTO schema_migrations VALUES (1, $1, now())", [first.name]);
    for (const r of rows) await client.query("INSERT INTO users VALUES ($1, $2, $3, $4, $5, $6, $7)", r);
  } finally {
    await client.end();
  }
}

async function rejectsWith<E extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${type.name}, but the call succeeded`);
}

// ---- The suite, once per adapter ---------------------------------------------------------------

for (const kind of databaseKinds) {
  describe(`Store contract on ${kind}`, () => {
    let db: TestDatabase;
    let store: Store;
    // A second store on the same database: another node.
    let other: Store;
    let boot: ReturnType<typeof bootstrapPlan>;
    let instanceId: string;
    let org: ResourceState;

    before(async () => {
      db = await freshDatabase(kind);
      store = await openStore(db.config);
      other = await openStore(db.config);
      boot = bootstrapPlan();
      instanceId = boot.instanceId;
      await store.append(boot.request);
      org = boot.org;
    });

    after(async () => {
      await other?.close();
      await store?.close();
      await db?.drop();
    });

    it("reports its dialect and answers ping", async () => {
      assert.equal(store.dialect, kind);
      await store.ping();
    });

    it("reports its connection pool where it has one", async () => {
      const stats = store.poolStats();
      if (kind === "sqlite") {
        assert.equal(stats, null, "SQLite has one embedded connection and no pool");
        return;
      }
      await store.ping();
      assert.ok(stats);
      const after = store.poolStats()!;
      assert.ok(after.total >= 1, "a connection was opened for the ping");
      assert.ok(after.idle <= after.total && after.total <= after.max);
      assert.equal(after.waiting, 0);
    });

    it("appends events and loads them back exactly", async () => {
      const plan = newUserPlan(instanceId, org.id, human("roundtrip"));
      const recorded = await store.append(plan.request);
      const events = plan.request.writes[0]!.events;

      assert.equal(recorded.length, events.length);
      assert.deepEqual(
        recorded.map((e) => e.sequence),
        events.map((_, i) => i + 1),
      );
      for (const [i, e] of recorded.entries()) {
        assert.equal(e.type, events[i]!.type);
        assert.deepEqual(e.payload, events[i]!.payload);
        assert.equal(e.aggregateType, "user");
        assert.equal(e.aggregateId, plan.after.id);
        assert.equal(e.owner, org.id);
        assert.equal(e.creator, "creator");
        assert.equal(e.createdAt.getTime(), plan.request.createdAt.getTime());
        if (i > 0) assert.ok(e.position > recorded[i - 1]!.position, "positions increase");
      }
      const loaded = await store.loadEvents(instanceId, { type: "user", id: plan.after.id }, 0);
      assert.deepEqual(loaded, recorded);
      assert.ok(loaded.every((e) => e.createdAt instanceof Date));
      assert.equal(loaded[0]!.createdAt.toISOString(), plan.request.createdAt.toISOString());

      // A later append continues the sequence and the log.
      const { after: afterOtp, recorded: more } = await changeUser(
        store,
        instanceId,
        plan.after,
        user.addOtpSms,
      );
      assert.equal(more[0]!.sequence, recorded.length + 1);
      assert.ok(more[0]!.position > recorded.at(-1)!.position);
      const tail = await store.loadEvents(instanceId, { type: "user", id: plan.after.id }, recorded.length);
      assert.deepEqual(tail, more);
      assert.deepEqual(await store.getUser(instanceId, plan.after.id), afterOtp);
      // Another node sees the same.
      assert.deepEqual(await other.loadEvents(instanceId, { type: "user", id: plan.after.id }, 0), [
        ...recorded,
        ...more,
      ]);
    });

    it("keeps instances apart", async () => {
      const u = await addUser(store, instanceId, org.id, human("isolated"));
      const elsewhere = newId();
      assert.deepEqual(await store.loadEvents(elsewhere, { type: "user", id: u.id }, 0), []);
      assert.equal(await store.getUser(elsewhere, u.id), null);
      assert.equal(await store.getOrg(elsewhere, org.id), null);
      assert.deepEqual(await store.readLog(elsewhere, 0, 100), []);
    });

    it("appends to several aggregates atomically, in write order", async () => {
      const newOrg = resourcePlan(instanceId, emptyResource("org", newId()), (s) =>
        resource.addResource(s, "Multi"),
      );
      const owner = newUserPlan(instanceId, newOrg.after.id, human("multi-owner"));
      const member = resourcePlan(instanceId, newOrg.after, (s) =>
        resource.addMember(s, owner.after.id, ["ORG_OWNER"]),
      );
      // The org's second write continues from its first within the same append.
      const request = together(newOrg, owner, member);
      const recorded = await store.append(request);

      assert.deepEqual(
        recorded.map((e) => [e.aggregateType, e.aggregateId, e.sequence]),
        [
          ["org", newOrg.after.id, 1],
          ...owner.request.writes[0]!.events.map((_, i) => ["user", owner.after.id, i + 1]),
          ["org", newOrg.after.id, 2],
        ],
      );
      for (let i = 1; i < recorded.length; i++) assert.ok(recorded[i]!.position > recorded[i - 1]!.position);
      assert.deepEqual(await store.getOrg(instanceId, newOrg.after.id), {
        id: newOrg.after.id,
        name: "Multi",
      });
      assert.deepEqual(await store.getUser(instanceId, owner.after.id), owner.after);
      assert.deepEqual(await store.membershipsOf(instanceId, owner.after.id), [
        { scope: { kind: "org", orgId: newOrg.after.id }, roles: ["ORG_OWNER"] },
      ]);
    });

    it("refuses a stale expected sequence with ConcurrencyError and writes nothing", async () => {
      const u = await addUser(store, instanceId, org.id, human("stale"));
      const before = await store.loadEvents(instanceId, { type: "user", id: u.id }, 0);
      const { after: current } = await changeUser(store, instanceId, u, user.addOtpSms);

      // Decided on the state before the OTP was added: the aggregate has moved on.
      const stale = userPlan(instanceId, u, user.removePhone);
      await rejectsWith(store.append(stale.request), ConcurrencyError);
      assert.equal(
        (await store.loadEvents(instanceId, { type: "user", id: u.id }, 0)).length,
        before.length + 1,
      );
      assert.deepEqual(await store.getUser(instanceId, u.id), current);

      // All or nothing across aggregates: the fresh org of the same append is not written either.
      const freshOrg = resourcePlan(instanceId, emptyResource("org", newId()), (s) =>
        resource.addResource(s, "Lost"),
      );
      await rejectsWith(store.append(together(freshOrg, stale)), ConcurrencyError);
      assert.deepEqual(await store.loadEvents(instanceId, { type: "org", id: freshOrg.after.id }, 0), []);
      assert.equal(await store.getOrg(instanceId, freshOrg.after.id), null);
    });

    it("lets exactly one of many concurrent appends on the same sequence win", async () => {
      const u = await addUser(store, instanceId, org.id, human("racer"));
      const count = 12;
      const plans = Array.from({ length: count }, (_, i) =>
        userPlan(instanceId, u, (s) =>
          user.setPhone(s, { phone: `+4179123450${i % 10}${i}`, verified: true }),
        ),
      );
      const results = await Promise.allSettled(
        plans.map((p, i) => (i % 2 === 0 ? store : other).append(p.request)),
      );
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      assert.equal(won.length, 1, "exactly one append wins");
      for (const r of results)
        if (r.status === "rejected") assert.ok(r.reason instanceof ConcurrencyError, String(r.reason));

      const winner = plans[won[0]!]!;
      const events = await store.loadEvents(instanceId, { type: "user", id: u.id }, 0);
      assert.equal(events.length, u.sequence + winner.request.writes[0]!.events.length);
      assert.deepEqual(
        events.map((e) => e.sequence),
        events.map((_, i) => i + 1),
      );
      assert.deepEqual(await store.getUser(instanceId, u.id), winner.after);
    });

    it("lets each of many appends sent at once stand or fall alone", async () => {
      const u = await addUser(store, instanceId, org.id, human("batch-target"));
      await addUser(store, instanceId, org.id, human("batch-taken"));
      // Sent in one turn of the event loop: SQLite commits these together, yet a failing one
      // must take nothing else with it.
      const fresh = Array.from({ length: 8 }, (_, i) => newUserPlan(instanceId, org.id, human(`batch-${i}`)));
      // Two changes decided on the same state of one user: either may come first (PostgreSQL's
      // pool sends them on two connections), and the other must lose.
      const racers = [userPlan(instanceId, u, user.addOtpSms), userPlan(instanceId, u, user.removePhone)];
      const clash = newUserPlan(instanceId, org.id, human("Batch-Taken"));
      const outcome = (r: PromiseSettledResult<unknown>) =>
        r.status === "fulfilled" ? "written" : r.reason.constructor.name;
      const results = (
        await Promise.allSettled([
          ...fresh.map((p) => store.append(p.request)),
          ...racers.map((p) => store.append(p.request)),
          store.append(clash.request),
        ])
      ).map(outcome);
      assert.deepEqual(
        results.slice(0, fresh.length),
        fresh.map(() => "written"),
      );
      assert.deepEqual(results.slice(fresh.length).sort(), [
        "ConcurrencyError",
        "UniqueViolation",
        "written",
      ]);
      for (const p of fresh) assert.deepEqual(await other.getUser(instanceId, p.after.id), p.after);
      const winner = racers[results.indexOf("written", fresh.length) - fresh.length]!;
      assert.deepEqual(await other.getUser(instanceId, u.id), winner.after);
      assert.equal(await other.getUser(instanceId, clash.after.id), null);
      assert.deepEqual(await other.loadEvents(instanceId, { type: "user", id: clash.after.id }, 0), []);
    });

    it("applies read-model changes with the events and rolls them back with them", async () => {
      const first = await addUser(store, instanceId, org.id, human("Clash"));
      // Usernames are unique per instance without regard to case.
      const clash = newUserPlan(instanceId, org.id, human("clash"));
      const err = await rejectsWith(store.append(clash.request), UniqueViolation);
      assert.equal(err.what, "username");
      assert.deepEqual(await store.loadEvents(instanceId, { type: "user", id: clash.after.id }, 0), []);
      assert.equal(await store.getUser(instanceId, clash.after.id), null);

      // The events of other aggregates in the same append are rolled back too.
      const withOrg = resourcePlan(instanceId, emptyResource("org", newId()), (s) =>
        resource.addResource(s, "Clash"),
      );
      const clash2 = newUserPlan(instanceId, withOrg.after.id, machine("CLASH"));
      assert.equal(
        (await rejectsWith(store.append(together(withOrg, clash2)), UniqueViolation)).what,
        "username",
      );
      assert.deepEqual(await store.loadEvents(instanceId, { type: "org", id: withOrg.after.id }, 0), []);
      assert.equal(await store.getOrg(instanceId, withOrg.after.id), null);

      // The same name is free in another instance, and again once its holder is deleted.
      const elsewhere = newUserPlan(newId(), org.id, human("clash"));
      await store.append(elsewhere.request);
      await changeUser(store, instanceId, first, user.removeUser);
      const retry = newUserPlan(instanceId, org.id, human("clash"));
      await store.append(retry.request);
      assert.deepEqual(await store.getUser(instanceId, retry.after.id), retry.after);
    });

    it("returns the user state exactly as projected, including after deletion", async () => {
      const plan = newUserPlan(instanceId, org.id, human("state"));
      await store.append(plan.request);
      assert.deepEqual(await store.getUser(instanceId, plan.after.id), plan.after);

      const { after: removed } = await changeUser(store, instanceId, plan.after, user.removeUser);
      assert.equal(removed.deleted, true);
      assert.deepEqual(await store.getUser(instanceId, plan.after.id), removed);
      assert.equal(await store.getUser(instanceId, newId()), null);
    });

    it("keeps one instance per database", async () => {
      assert.deepEqual(await store.getInstance(), {
        id: instanceId,
        name: "Latchkey",
        defaultOrgId: org.id,
      });
      assert.deepEqual(await other.getInstance(), await store.getInstance());

      const second = bootstrapPlan();
      const err = await rejectsWith(store.append(second.request), UniqueViolation);
      assert.equal(err.what, "instance");
      assert.deepEqual(await store.readLog(second.instanceId, 0, 100), []);
      assert.equal(await store.getUser(second.instanceId, second.admin.id), null);
      assert.equal((await store.getInstance())?.id, instanceId);

      // The existing instance may still change: its row is updated, not duplicated.
      const instance = foldResource(
        emptyResource("instance", instanceId),
        await store.loadEvents(instanceId, { type: "instance", id: instanceId }, 0),
      );
      const u = await addUser(store, instanceId, org.id, machine("instance-admin"));
      await store.append(
        resourcePlan(instanceId, instance, (s) => resource.addMember(s, u.id, ["IAM_OWNER_VIEWER"])).request,
      );
      assert.equal((await store.getInstance())?.id, instanceId);
      assert.deepEqual(await store.membershipsOf(instanceId, u.id), [
        { scope: { kind: "instance" }, roles: ["IAM_OWNER_VIEWER"] },
      ]);
    });

    it("finds tokens by hash, with their user and memberships, until removed or the user is deleted", async () => {
      const bot = await addUser(store, instanceId, org.id, machine("bot"));
      const tokens = [newToken(), newToken(), newToken()];
      const expiresAt = new Date(Date.parse("2031-02-03T04:05:06.789Z"));
      let state = bot;
      const ids: string[] = [];
      for (const [i, token] of tokens.entries()) {
        const tokenId = newId();
        ids.push(tokenId);
        ({ after: state } = await changeUser(store, instanceId, state, (s) =>
          user.addPersonalAccessToken(s, {
            tokenId,
            tokenHash: hashToken(token),
            expiresAt: i === 0 ? null : expiresAt,
            now: new Date(clock),
          }),
        ));
      }
      assert.deepEqual(await store.findTokenHolder(instanceId, hashToken(tokens[0]!)), {
        token: { tokenId: ids[0], userId: bot.id, expiresAt: null },
        user: state,
        memberships: [],
      });
      assert.deepEqual((await store.findTokenHolder(instanceId, hashToken(tokens[1]!)))?.token, {
        tokenId: ids[1],
        userId: bot.id,
        expiresAt: expiresAt.toISOString(),
      });
      assert.equal(await store.findTokenHolder(newId(), hashToken(tokens[0]!)), null);
      assert.equal(await store.findTokenHolder(instanceId, hashToken(newToken())), null);

      // Memberships come with the token, in the order membershipsOf gives them, and follow
      // their changes at once: nothing about a token is remembered between two reads.
      const orgA = await addOrg(store, instanceId, "Token A");
      const orgB = await addOrg(store, instanceId, "Token B");
      const intoA = resourcePlan(instanceId, orgA, (s) => resource.addMember(s, bot.id, ["ORG_OWNER"]));
      await store.append(intoA.request);
      await store.append(
        resourcePlan(instanceId, orgB, (s) =>
          resource.addMember(s, bot.id, ["ORG_USER_MANAGER", "ORG_OWNER_VIEWER"]),
        ).request,
      );
      const held = await other.findTokenHolder(instanceId, hashToken(tokens[2]!));
      assert.equal(held?.memberships.length, 2);
      assert.deepEqual(held?.memberships, await other.membershipsOf(instanceId, bot.id));
      assert.deepEqual(
        sortMemberships(held?.memberships ?? []),
        sortMemberships([
          { scope: { kind: "org", orgId: orgA.id }, roles: ["ORG_OWNER"] },
          { scope: { kind: "org", orgId: orgB.id }, roles: ["ORG_USER_MANAGER", "ORG_OWNER_VIEWER"] },
        ]),
      );
      await store.append(
        resourcePlan(instanceId, intoA.after, (s) => resource.removeMember(s, bot.id)).request,
      );
      assert.deepEqual((await other.findTokenHolder(instanceId, hashToken(tokens[2]!)))?.memberships, [
        { scope: { kind: "org", orgId: orgB.id }, roles: ["ORG_USER_MANAGER", "ORG_OWNER_VIEWER"] },
      ]);

      ({ after: state } = await changeUser(store, instanceId, state, (s) =>
        user.removePersonalAccessToken(s, ids[0]!),
      ));
      assert.equal(await other.findTokenHolder(instanceId, hashToken(tokens[0]!)), null);
      assert.deepEqual((await other.findTokenHolder(instanceId, hashToken(tokens[2]!)))?.user, state);

      await changeUser(store, instanceId, state, user.removeUser);
      for (const token of tokens)
        assert.equal(await other.findTokenHolder(instanceId, hashToken(token)), null);
    });

    it("loads a user's row with the events written after it, or every event without a row", async () => {
      const plan = newUserPlan(instanceId, org.id, human(`tail-${newId()}`));
      await store.append(plan.request);
      assert.deepEqual(await other.loadUser(instanceId, plan.after.id), { snapshot: plan.after, tail: [] });

      // Events appended without moving the row (as a node that crashed before projecting would
      // leave them) come back as the tail, in order, exactly as loadEvents reads them.
      const ref: AggregateRef = { type: "user", id: plan.after.id };
      const more = user.addOtpSms(plan.after).events;
      const tail = await store.append({
        instanceId,
        creator: "creator",
        createdAt: tick(),
        writes: [{ ref, owner: org.id, expectedSequence: plan.after.sequence, events: more }],
        readModel: [],
      });
      assert.ok(tail.length > 0);
      const loaded = await other.loadUser(instanceId, plan.after.id);
      assert.deepEqual(loaded, { snapshot: plan.after, tail });
      assert.deepEqual(loaded.tail, await other.loadEvents(instanceId, ref, plan.after.sequence));
      assert.ok(loaded.tail.every((e) => e.createdAt instanceof Date));

      // Events without a row: all of them are the tail.
      const unprojected = newUserPlan(instanceId, org.id, human(`bare-${newId()}`));
      const written = await store.append({ ...unprojected.request, readModel: [] });
      assert.deepEqual(await other.loadUser(instanceId, unprojected.after.id), {
        snapshot: null,
        tail: written,
      });

      assert.deepEqual(await store.loadUser(instanceId, newId()), { snapshot: null, tail: [] });
      assert.deepEqual(await store.loadUser(newId(), plan.after.id), { snapshot: null, tail: [] });
    });

    it("tracks memberships through additions, removals and user deletion", async () => {
      const u = await addUser(store, instanceId, org.id, human("member"));
      const addA = resourcePlan(instanceId, await addOrg(store, instanceId, "A"), (s) =>
        resource.addMember(s, u.id, ["ORG_OWNER"]),
      );
      const addB = resourcePlan(instanceId, await addOrg(store, instanceId, "B"), (s) =>
        resource.addMember(s, u.id, ["ORG_USER_MANAGER", "ORG_OWNER_VIEWER"]),
      );
      await store.append(addA.request);
      await store.append(addB.request);
      const inB = {
        scope: { kind: "org", orgId: addB.after.id },
        roles: ["ORG_USER_MANAGER", "ORG_OWNER_VIEWER"],
      };
      assert.deepEqual(
        sortMemberships(await store.membershipsOf(instanceId, u.id)),
        sortMemberships([{ scope: { kind: "org", orgId: addA.after.id }, roles: ["ORG_OWNER"] }, inB]),
      );

      await store.append(resourcePlan(instanceId, addA.after, (s) => resource.removeMember(s, u.id)).request);
      assert.deepEqual(await store.membershipsOf(instanceId, u.id), [inB]);

      const state = await store.getUser(instanceId, u.id);
      await changeUser(store, instanceId, state!, user.removeUser);
      assert.deepEqual(await store.membershipsOf(instanceId, u.id), []);
      assert.deepEqual(await store.membershipsOf(instanceId, newId()), []);
    });

    it("keeps sessions until they are terminated, and finds them by user, creator and id", async () => {
      const ada = await addUser(store, instanceId, org.id, human(`ada-${newId()}`));
      const started: SessionState[] = [];
      for (const creator of ["login-a", "login-b", "login-a"]) {
        const plan = sessionPlan(
          instanceId,
          emptySession(newId()),
          signInStep(emptySession(""), {
            now: new Date(clock),
            start: { userAgent: { description: "contract 東京", header: { "x-a": ["1"] } } },
            checkUser: ada,
            user: ada,
            tokenHash: hashToken(newToken()),
            lockout,
          }).session,
          creator,
        );
        await store.append(plan.request);
        started.push(plan.after);
      }
      const [first, second, third] = started as [SessionState, SessionState, SessionState];
      assert.deepEqual(await other.getSession(instanceId, first.id), first);
      const ofUser = await other.sessionsOfUser(instanceId, ada.id);
      assert.deepEqual(ofUser.map((s) => s.id).sort(), started.map((s) => s.id).sort());
      const page = { offset: 0, limit: 10, ascending: true };
      const byCreator = await other.listSessions(instanceId, {
        ...page,
        visibleTo: null,
        creator: "login-a",
      });
      assert.equal(byCreator.total, 2);
      assert.deepEqual(
        byCreator.sessions.map((s) => s.id),
        [first.id, third.id],
      );
      const visible = await other.listSessions(instanceId, {
        ...page,
        visibleTo: { userId: "login-b", orgIds: [] },
      });
      assert.deepEqual(
        visible.sessions.map((s) => s.id),
        [second.id],
      );
      const mine = await other.listSessions(instanceId, {
        ...page,
        visibleTo: { userId: ada.id, orgIds: [] },
        limit: 1,
        offset: 1,
      });
      assert.equal(mine.total, 3);
      assert.deepEqual(
        mine.sessions.map((s) => s.id),
        [second.id],
      );
      const picked = await other.listSessions(instanceId, {
        ...page,
        visibleTo: null,
        ids: [third.id, "nope"],
        ascending: false,
      });
      assert.deepEqual(
        picked.sessions.map((s) => s.id),
        [third.id],
      );
      assert.equal((await other.listSessions(instanceId, { ...page, visibleTo: null, ids: [] })).total, 0);
      // Someone who holds session.read in ada's organization sees her sessions; elsewhere, not.
      const inHerOrg = await other.listSessions(instanceId, {
        ...page,
        visibleTo: { userId: "org-reader", orgIds: ["another-org", org.id] },
      });
      assert.equal(inHerOrg.total, 3);
      const inOthers = await other.listSessions(instanceId, {
        ...page,
        visibleTo: { userId: "org-reader", orgIds: ["another-org"] },
      });
      assert.equal(inOthers.total, 0);

      const ended = sessionPlan(instanceId, second, terminateSession(second));
      await store.append(ended.request);
      assert.equal(await other.getSession(instanceId, second.id), null);
      assert.equal((await other.sessionsOfUser(instanceId, ada.id)).length, 2);
      const log = await other.loadEvents(instanceId, { type: "session", id: second.id }, 0);
      assert.deepEqual(
        log.map((e) => e.type),
        ["session.added", "session.user.checked", "session.token.set", "session.terminated"],
      );
    });

    it("finds users by login name case-insensitively, but not deleted ones", async () => {
      const name = `Grace-${newId()}`;
      const grace = await addUser(store, instanceId, org.id, human(name));
      assert.equal(await other.userIdByLoginName(instanceId, name.toUpperCase()), grace.id);
      assert.equal(await other.userIdByLoginName(newId(), name), null);
      await changeUser(store, instanceId, grace, user.removeUser);
      assert.equal(await other.userIdByLoginName(instanceId, name), null);
    });

    it("folds the case of letters beyond ASCII in usernames, login names and searches", async () => {
      const suffix = newId();
      const elodie = await addUser(store, instanceId, org.id, human(`ÉLODIE-Ørsted-${suffix}`));
      const err = await rejectsWith(
        store.append(newUserPlan(instanceId, org.id, human(`élodie-ørsted-${suffix}`)).request),
        UniqueViolation,
      );
      assert.equal(err.what, "username");
      assert.equal(await other.userIdByLoginName(instanceId, `Élodie-ørsted-${suffix}`), elodie.id);
      const found = await other.searchUsers(instanceId, {
        filter: {
          kind: "text",
          field: "username",
          method: "equalsIgnoreCase",
          value: `élodie-ØRSTED-${suffix}`,
        },
        visible: { all: true },
        sort: "username",
        ascending: true,
        offset: 0,
        limit: 10,
      });
      assert.deepEqual(
        found.users.map((u) => u.id),
        [elodie.id],
      );
    });

    it("reads the log of an instance in order, page by page", async () => {
      const logInstance = newId();
      const appended: RecordedEvent[] = [];
      const logOrg = resourcePlan(logInstance, emptyResource("org", newId()), (s) =>
        resource.addResource(s, "Log"),
      );
      appended.push(...(await store.append(logOrg.request)));
      for (let i = 0; i < 4; i++) {
        const plan = newUserPlan(logInstance, logOrg.after.id, human(`log-${i}`, i % 2 === 0));
        appended.push(...(await (i % 2 === 0 ? store : other).append(plan.request)));
      }
      // Events of another instance interleave in the table but never in this log.
      await addUser(store, instanceId, org.id, human("log-noise"));

      const all = await store.readLog(logInstance, 0, 1000);
      assert.deepEqual(all, appended);
      for (let i = 1; i < all.length; i++) assert.ok(all[i]!.position > all[i - 1]!.position);

      const paged: RecordedEvent[] = [];
      let cursor = 0;
      for (;;) {
        const page = await store.readLog(logInstance, cursor, 3);
        assert.ok(page.length <= 3);
        if (page.length === 0) break;
        paged.push(...page);
        cursor = page.at(-1)!.position;
      }
      assert.deepEqual(paged, all);
      assert.deepEqual(await store.readLog(logInstance, all.at(-1)!.position, 10), []);
      assert.deepEqual(await store.readLog(logInstance, all[1]!.position, 2), all.slice(2, 4));
    });

    it("lists an instance's log and read models as of one moment, while others write", async () => {
      const own = newId();
      const ownOrg = resourcePlan(own, emptyResource("org", newId()), (s) => resource.addResource(s, "Snap"));
      const appended = [...(await store.append(ownOrg.request))];
      const humans: UserState[] = [];
      for (let i = 0; i < 5; i++) {
        const plan = newUserPlan(own, ownOrg.after.id, human(`snap-${i}`));
        appended.push(...(await store.append(plan.request)));
        humans.push(plan.after);
      }
      const bot = newUserPlan(own, ownOrg.after.id, machine("snap-bot"));
      appended.push(...(await store.append(bot.request)));
      const tokenId = newId();
      const token = newToken();
      const withToken = userPlan(own, bot.after, (s) =>
        user.addPersonalAccessToken(s, {
          tokenId,
          tokenHash: hashToken(token),
          expiresAt: null,
          now: tick(),
        }),
      );
      appended.push(...(await store.append(withToken.request)));
      const membership = resourcePlan(own, ownOrg.after, (s) =>
        resource.addMember(s, humans[0]!.id, ["ORG_OWNER", "ORG_OWNER_VIEWER"]),
      );
      appended.push(...(await store.append(membership.request)));
      const everyone = [...humans, withToken.after].sort((a, b) => (a.id < b.id ? -1 : 1));

      const late = newUserPlan(own, ownOrg.after.id, human("snap-late"));
      await store.snapshot(own, async (view) => {
        assert.deepEqual(await view.readLog(0, 1000), appended);
        // Another node writes after the snapshot's first read: the snapshot does not see it.
        await other.append(late.request);
        assert.deepEqual(await view.readLog(0, 1000), appended);
        assert.deepEqual(await view.readLog(appended[2]!.position, 3), appended.slice(3, 6));

        const listed = [];
        for (let after = ""; ; ) {
          const page = await view.listUsers(after, 2);
          assert.ok(page.length <= 2);
          if (page.length === 0) break;
          listed.push(...page);
          after = page.at(-1)!.id;
        }
        assert.deepEqual(
          listed,
          everyone.map((u) => ({
            id: u.id,
            state: u,
            orgId: u.orgId,
            username: u.username,
            deleted: false,
            sequence: u.sequence,
            search: userSearchFields(u),
          })),
        );
        assert.deepEqual(await view.listTokens(), [
          { tokenId, tokenHash: hashToken(token), userId: bot.after.id, expiresAt: null },
        ]);
        assert.deepEqual(await view.listMembers(), [
          {
            userId: humans[0]!.id,
            scopeKind: "org",
            scopeId: ownOrg.after.id,
            roles: ["ORG_OWNER", "ORG_OWNER_VIEWER"],
          },
        ]);
        assert.deepEqual(await view.listOrgs(), [{ id: ownOrg.after.id, name: "Snap", sequence: 2 }]);
        assert.deepEqual(await view.getInstance(), await store.getInstance());
      });
      // A new snapshot sees what was written meanwhile.
      await store.snapshot(own, async (view) => {
        assert.equal(
          (await view.readLog(0, 1000)).length,
          appended.length + late.request.writes[0]!.events.length,
        );
        assert.ok((await view.listUsers("", 100)).some((u) => u.id === late.after.id));
      });
      // Another instance's rows are not listed.
      await store.snapshot(newId(), async (view) => {
        assert.deepEqual(await view.readLog(0, 10), []);
        assert.deepEqual(await view.listUsers("", 10), []);
        assert.deepEqual(await view.listTokens(), []);
        assert.deepEqual(await view.listMembers(), []);
        assert.deepEqual(await view.listOrgs(), []);
      });
    });

    it("passes on what a snapshot's reader throws and keeps serving", async () => {
      // More failed snapshots than a pool holds connections: none may be left checked out.
      for (let i = 0; i < 12; i++)
        await assert.rejects(
          store.snapshot(instanceId, async (view) => {
            await view.listOrgs();
            throw new Error(`reader failed ${i}`);
          }),
          { message: `reader failed ${i}` },
        );
      await store.ping();
      assert.ok(await store.getOrg(instanceId, org.id));
    });

    it("answers reads of what does not exist with null or nothing", async () => {
      assert.equal(await store.getOrg(instanceId, newId()), null);
      assert.equal(await store.getUser(instanceId, newId()), null);
      assert.deepEqual(await store.loadEvents(instanceId, { type: "org", id: newId() }, 0), []);
      assert.deepEqual(await store.loadEvents(instanceId, { type: "user", id: boot.admin.id }, 99), []);
    });

    describe("searching users", () => {
      // An instance of its own, so that the other tests' users stay out of the answers.
      const sid = newId();
      const orgA = newId();
      const orgB = newId();
      const u: Record<string, UserState> = {};
      const everything: UserSearch = {
        filter: { kind: "and", filters: [] },
        visible: { all: true },
        sort: "username",
        ascending: true,
        offset: 0,
        limit: 100,
      };
      const names = async (search: Partial<UserSearch>) =>
        (await store.searchUsers(sid, { ...everything, ...search })).users.map((s) => s.username);
      const matching = (filter: UserFilter) => names({ filter });
      const text = (field: UserTextField, method: TextMethod, value: string): UserFilter => ({
        kind: "text",
        field,
        method,
        value,
      });

      before(async () => {
        const add = async (orgId: string, d: (s: UserState) => Decision) => {
          const s = await addUser(store, sid, orgId, d);
          u[s.username] = s;
          return s;
        };
        await add(
          orgA,
          person("Alice.Smith", {
            email: "alice@Example.com",
            phone: "+41791112233",
            given: "Alice",
            family: "Smith",
          }),
        );
        await add(orgA, person("bob_jones", { email: "bob@example.org", phone: "+41792223344" }));
        // Every wildcard of LIKE and GLOB, to be taken literally.
        await add(orgA, person("carol%_[x]*?", { email: "carol@example.org", nick: "Caz" }));
        await add(orgA, machine("svc-bot"));
        await add(orgB, person("eve", { email: "eve@example.net", display: "Eve Evans" }));
        const dave = await add(orgA, person("dave", { email: "dave@example.com" }));
        await changeUser(store, sid, dave, user.removeUser);
      });

      it("leaves deleted users and other instances out, and returns the state as projected", async () => {
        const all = await store.searchUsers(sid, everything);
        assert.equal(all.total, 5);
        assert.deepEqual(
          all.users.map((s) => s.username),
          ["Alice.Smith", "bob_jones", "carol%_[x]*?", "eve", "svc-bot"],
        );
        assert.deepEqual(all.users[0], u["Alice.Smith"]);
        assert.deepEqual(all.users[4], u["svc-bot"]);
        assert.deepEqual(await store.searchUsers(newId(), everything), { total: 0, users: [] });
      });

      it("matches text with each of ZITADEL's methods, case and wildcards as asked", async () => {
        const cases: [UserFilter, string[]][] = [
          [text("username", "equals", "Alice.Smith"), ["Alice.Smith"]],
          [text("username", "equals", "alice.smith"), []],
          [text("username", "equalsIgnoreCase", "alice.SMITH"), ["Alice.Smith"]],
          [text("username", "startsWith", "Ali"), ["Alice.Smith"]],
          [text("username", "startsWith", "ali"), []],
          [text("username", "startsWithIgnoreCase", "ali"), ["Alice.Smith"]],
          [text("username", "endsWith", "Jones"), []],
          [text("username", "endsWithIgnoreCase", "JONES"), ["bob_jones"]],
          [text("username", "contains", "_"), ["bob_jones", "carol%_[x]*?"]],
          [text("username", "contains", "%"), ["carol%_[x]*?"]],
          [text("username", "contains", "[x]"), ["carol%_[x]*?"]],
          [text("username", "contains", "*?"), ["carol%_[x]*?"]],
          [text("username", "containsIgnoreCase", "%_["), ["carol%_[x]*?"]],
          [text("username", "contains", "S"), ["Alice.Smith"]],
          [text("username", "containsIgnoreCase", "S"), ["Alice.Smith", "bob_jones", "svc-bot"]],
          [text("email", "equals", "alice@example.com"), []],
          [text("email", "equalsIgnoreCase", "ALICE@example.com"), ["Alice.Smith"]],
          [text("email", "endsWithIgnoreCase", "EXAMPLE.ORG"), ["bob_jones", "carol%_[x]*?"]],
          [text("phone", "startsWith", "+4179222"), ["bob_jones"]],
          [text("phone", "contains", "1112"), ["Alice.Smith"]],
          [text("givenName", "equals", "Alice"), ["Alice.Smith"]],
          [text("familyName", "equalsIgnoreCase", "smith"), ["Alice.Smith"]],
          [text("nickName", "equals", "Caz"), ["carol%_[x]*?"]],
          [text("displayName", "containsIgnoreCase", "evans"), ["eve"]],
        ];
        for (const [filter, expected] of cases)
          assert.deepEqual(await matching(filter), expected, JSON.stringify(filter));
      });

      it("filters by organization, ids, addresses and type, combined with and, or and not", async () => {
        const alice = u["Alice.Smith"]!;
        const bob = u.bob_jones!;
        const cases: [UserFilter, string[]][] = [
          [{ kind: "org", orgId: orgB }, ["eve"]],
          [{ kind: "ids", ids: [alice.id, bob.id, newId()] }, ["Alice.Smith", "bob_jones"]],
          [{ kind: "ids", ids: [] }, []],
          [{ kind: "emails", emails: ["BOB@example.org", "eve@EXAMPLE.net"] }, ["bob_jones", "eve"]],
          [{ kind: "type", type: "machine" }, ["svc-bot"]],
          [{ kind: "always", value: false }, []],
          [{ kind: "or", filters: [] }, []],
          [
            {
              kind: "or",
              filters: [text("username", "equals", "bob_jones"), text("email", "contains", "Example.com")],
            },
            ["Alice.Smith", "bob_jones"],
          ],
          [
            {
              kind: "and",
              filters: [
                { kind: "org", orgId: orgA },
                { kind: "not", filter: { kind: "type", type: "human" } },
              ],
            },
            ["svc-bot"],
          ],
        ];
        for (const [filter, expected] of cases)
          assert.deepEqual(await matching(filter), expected, JSON.stringify(filter));
      });

      it("shows a caller limited to some organizations only those, and itself", async () => {
        const eve = u.eve!;
        assert.deepEqual(await names({ visible: { orgIds: [orgA], userId: eve.id } }), [
          "Alice.Smith",
          "bob_jones",
          "carol%_[x]*?",
          "eve",
          "svc-bot",
        ]);
        assert.deepEqual(await names({ visible: { orgIds: [orgB], userId: u["svc-bot"]!.id } }), [
          "eve",
          "svc-bot",
        ]);
        assert.deepEqual(await names({ visible: { orgIds: [], userId: eve.id } }), ["eve"]);
        const limited = await store.searchUsers(sid, {
          ...everything,
          visible: { orgIds: [orgB], userId: eve.id },
          filter: text("username", "contains", "o"),
        });
        assert.deepEqual(limited, { total: 0, users: [] });
      });

      it("sorts in either direction and pages without overlap, counting every match", async () => {
        const desc = await names({ ascending: false });
        assert.deepEqual(desc, ["svc-bot", "eve", "carol%_[x]*?", "bob_jones", "Alice.Smith"]);
        const byId = await store.searchUsers(sid, { ...everything, sort: "id" });
        const ids = byId.users.map((s) => s.id);
        assert.deepEqual(ids, [...ids].sort());
        const byEmail = await names({ sort: "email" });
        assert.deepEqual(
          byEmail,
          ["Alice.Smith", "bob_jones", "carol%_[x]*?", "eve", "svc-bot"].sort((a, b) =>
            u[a]!.email.toLowerCase() < u[b]!.email.toLowerCase() ? -1 : 1,
          ),
        );
        assert.deepEqual(await names({ sort: "type", filter: { kind: "org", orgId: orgA } }), [
          ...["Alice.Smith", "bob_jones", "carol%_[x]*?"].sort((a, b) => (u[a]!.id < u[b]!.id ? -1 : 1)),
          "svc-bot",
        ]);
        assert.deepEqual(await names({ sort: "createdAt" }), [
          "Alice.Smith",
          "bob_jones",
          "carol%_[x]*?",
          "svc-bot",
          "eve",
        ]);

        const paged: string[] = [];
        for (let offset = 0; offset < 7; offset += 2) {
          const page = await store.searchUsers(sid, { ...everything, offset, limit: 2 });
          assert.equal(page.total, 5);
          assert.ok(page.users.length <= 2);
          paged.push(...page.users.map((s) => s.username));
        }
        assert.deepEqual(paged, await names({}));
      });

      it("follows changes: a new number is found and the old one no longer", async () => {
        const bob = u.bob_jones!;
        const { after } = await changeUser(store, sid, bob, (s) =>
          user.setPhone(s, { phone: "+41799990000", verified: true }),
        );
        u.bob_jones = after;
        assert.deepEqual(await matching(text("phone", "equals", "+41799990000")), ["bob_jones"]);
        assert.deepEqual(await matching(text("phone", "equals", "+41792223344")), []);
        assert.deepEqual(
          (await store.searchUsers(sid, { ...everything, filter: { kind: "ids", ids: [bob.id] } })).users,
          [after],
        );
      });

      it("filters and sorts by state, locked and inactive as well as active", async () => {
        const { after: locked } = await changeUser(store, sid, u.eve!, user.lockUser);
        u.eve = locked;
        const { after: inactive } = await changeUser(store, sid, u["svc-bot"]!, user.deactivateUser);
        u["svc-bot"] = inactive;
        assert.deepEqual(await matching({ kind: "state", state: "locked" }), ["eve"]);
        assert.deepEqual(await matching({ kind: "state", state: "inactive" }), ["svc-bot"]);
        assert.deepEqual(await matching({ kind: "state", state: "active" }), [
          "Alice.Smith",
          "bob_jones",
          "carol%_[x]*?",
        ]);
        // "active" < "inactive" < "locked"; ties by id.
        const byState = await names({ sort: "state" });
        assert.deepEqual(byState.slice(3), ["svc-bot", "eve"]);
        assert.deepEqual(
          (await store.searchUsers(sid, { ...everything, filter: { kind: "ids", ids: [locked.id] } })).users,
          [locked],
        );
      });
    });

    it("reads an aggregate's latest events, newest first", async () => {
      const u = await addUser(store, instanceId, org.id, human("latest"));
      const { recorded } = await changeUser(store, instanceId, u, user.addOtpSms);
      const all = await store.loadEvents(instanceId, { type: "user", id: u.id }, 0);
      assert.ok(all.length >= 3);
      assert.deepEqual(
        await store.latestEvents(instanceId, { type: "user", id: u.id }, 100),
        [...all].reverse(),
      );
      assert.deepEqual(await store.latestEvents(instanceId, { type: "user", id: u.id }, 2), [
        recorded[0],
        all.at(-2),
      ]);
      assert.deepEqual(await store.latestEvents(instanceId, { type: "user", id: newId() }, 10), []);
      assert.deepEqual(await store.latestEvents(newId(), { type: "user", id: u.id }, 10), []);
    });

    it("fills the search columns of users written before they existed", async () => {
      const own = await freshDatabase(kind);
      try {
        const b = bootstrapPlan();
        const alice = newUserPlan(
          b.instanceId,
          b.org.id,
          person("old-alice", { email: "Old@Example.com", phone: "+41795550000" }),
        );
        await writeAtSchemaVersion1(own.config, b.instanceId, [alice.after, b.admin]);
        const reopened = await openStore(own.config);
        try {
          const found = await reopened.searchUsers(b.instanceId, {
            filter: {
              kind: "and",
              filters: [
                { kind: "text", field: "email", method: "equalsIgnoreCase", value: "old@example.com" },
                { kind: "text", field: "phone", method: "equals", value: "+41795550000" },
                { kind: "text", field: "displayName", method: "equals", value: "Given old-alice" },
                { kind: "type", type: "human" },
              ],
            },
            visible: { all: true },
            sort: "createdAt",
            ascending: true,
            offset: 0,
            limit: 10,
          });
          assert.deepEqual(found, { total: 1, users: [alice.after] });
        } finally {
          await reopened.close();
        }
      } finally {
        await own.drop();
      }
    });

    it("keeps everything when reopened and does not run migrations again", async () => {
      const own = await freshDatabase(kind);
      try {
        const first = await openStore(own.config);
        const b = bootstrapPlan();
        const recorded = await first.append(b.request);
        await first.close();
        const migrations = await migrationRecords(own.config);
        assert.ok(migrations.length > 0);

        const reopened = await openStore(own.config);
        try {
          assert.deepEqual(await migrationRecords(own.config), migrations);
          assert.deepEqual(await reopened.readLog(b.instanceId, 0, 100), recorded);
          assert.deepEqual(await reopened.getInstance(), {
            id: b.instanceId,
            name: "Latchkey",
            defaultOrgId: b.org.id,
          });
          assert.deepEqual(await reopened.getUser(b.instanceId, b.admin.id), b.admin);
          assert.deepEqual(await reopened.membershipsOf(b.instanceId, b.admin.id), [
            { scope: { kind: "instance" }, roles: ["IAM_OWNER"] },
          ]);
          // The log goes on where it stopped.
          const more = await reopened.append(
            newUserPlan(b.instanceId, b.org.id, machine("after-reopen")).request,
          );
          assert.ok(more[0]!.position > recorded.at(-1)!.position);
        } finally {
          await reopened.close();
        }
      } finally {
        await own.drop();
      }
    });

    it("opened without migrating, leaves the schema as it finds it", async () => {
      const own = await freshDatabase(kind);
      try {
        // Refused when opened (SQLite prepares its statements then) or at the first read.
        await assert.rejects(async () => {
          const bare = await openStore(own.config, { migrate: false });
          try {
            await bare.getInstance();
          } finally {
            await bare.close();
          }
        });
        await assert.rejects(migrationRecords(own.config), "no schema was created");

        const migrating = await openStore(own.config);
        const b = bootstrapPlan();
        await migrating.append(b.request);
        await migrating.close();
        const reader = await openStore(own.config, { migrate: false });
        try {
          assert.equal((await reader.getInstance())?.id, b.instanceId);
        } finally {
          await reader.close();
        }
      } finally {
        await own.drop();
      }
    });

    it("opens three stores at once on a fresh database, and one bootstrap wins", async () => {
      const own = await freshDatabase(kind);
      const stores = await Promise.all([openStore(own.config), openStore(own.config), openStore(own.config)]);
      try {
        const migrations = await migrationRecords(own.config);
        assert.equal(new Set(migrations.map((m) => m.split(" ")[0])).size, migrations.length);

        const plans = stores.map(() => bootstrapPlan());
        const results = await Promise.allSettled(stores.map((s, i) => s.append(plans[i]!.request)));
        const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
        assert.equal(won.length, 1, "exactly one instance is created");
        for (const r of results)
          if (r.status === "rejected")
            assert.ok(r.reason instanceof UniqueViolation && r.reason.what === "instance", String(r.reason));
        const winner = plans[won[0]!]!;
        for (const s of stores) assert.equal((await s.getInstance())?.id, winner.instanceId);
        for (const [i, p] of plans.entries())
          if (i !== won[0]) assert.deepEqual(await stores[0]!.readLog(p.instanceId, 0, 10), []);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await own.drop();
      }
    });

    it("stores an SMS with the events that need it, and neither without the other", async () => {
      const own = newId();
      const plan = withOutbox(own, org.id, "outbox-1", null, {});
      const m = plan.messages[0]!;
      await store.append(plan.request);
      const [row] = await other.outboxOf(own, plan.after.id);
      assert.equal(row?.id, m.id);
      assert.equal(row?.status, "pending");
      assert.equal(row?.attempts, 0);
      assert.equal(row?.to, "+41791234567");
      assert.equal(row?.type, "phone_verification");
      assert.equal(row?.hasText, true);
      assert.equal(row?.createdAt.getTime(), plan.request.createdAt.getTime());

      // An append that loses its race takes its message down with it.
      const stale = withOutbox(own, org.id, "outbox-1b", null, {});
      await rejectsWith(
        store.append({ ...stale.request, writes: [...stale.request.writes, ...plan.request.writes] }),
        ConcurrencyError,
      );
      assert.deepEqual(await store.outboxOf(own, stale.after.id), []);

      // What a claim hands back is what was stored, sealed text and expiry included.
      const [claimed] = await claimAt(store, own, new Date(plan.request.createdAt.getTime() + 1));
      assert.equal(claimed?.id, m.id);
      assert.equal(claimed?.sealedText, m.sealedText);
      assert.equal(claimed?.expiresAt?.getTime(), m.expiresAt?.getTime());
      assert.equal(claimed?.language, "de");
      assert.equal(claimed?.userId, plan.after.id);
      assert.equal(claimed?.attempt, 1);
      assert.equal(claimed?.abandoned, false);
      assert.equal((await store.outboxOf(own, plan.after.id))[0]?.status, "sending");
    });

    it("counts a sending limit in the database, so that nodes appending at once never exceed it", async () => {
      const own = newId();
      const quota: SendQuota = { key: `sms:number:${newId()}`, limit: 3, windowMs: 3600_000 };
      const at = new Date(clock);
      const plans = Array.from({ length: 12 }, (_, i) =>
        withOutbox(own, org.id, `limit-race-${i}`, at, { quotas: [quota] }),
      );
      const results = await Promise.allSettled(
        plans.map((p, i) => (i % 2 === 0 ? store : other).append(p.request)),
      );
      const won = results.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 3, "exactly the limit gets through");
      for (const r of results)
        if (r.status === "rejected") {
          assert.ok(r.reason instanceof QuotaExceeded, String(r.reason));
          assert.equal(r.reason.key, quota.key);
          assert.equal(r.reason.retryAfterMs, 3600_000);
        }
      // A refused append wrote nothing: neither the user, nor the message.
      for (const [i, p] of plans.entries()) {
        const stored = await store.getUser(own, p.after.id);
        assert.equal(stored !== null, results[i]!.status === "fulfilled");
      }
      const claimed = await claimAt(store, own, new Date(at.getTime() + 1));
      assert.equal(claimed.length, 3);
    });

    it("counts the messages of one append against each other", async () => {
      const own = newId();
      const quota: SendQuota = { key: `sms:user:${newId()}`, limit: 2, windowMs: 3600_000 };
      const at = new Date(clock);
      const three = withOutbox(
        own,
        org.id,
        "limit-one-append",
        at,
        { quotas: [quota] },
        { quotas: [quota] },
        {
          quotas: [quota],
        },
      );
      const refused = await rejectsWith(store.append(three.request), QuotaExceeded);
      assert.equal(refused.key, quota.key);
      assert.equal(await store.getUser(own, three.after.id), null);
      assert.deepEqual(await store.outboxOf(own, three.after.id), []);

      const two = withOutbox(own, org.id, "limit-one-append-2", at, { quotas: [quota] }, { quotas: [quota] });
      await store.append(two.request);
      assert.equal((await other.outboxOf(own, two.after.id)).length, 2);
      await rejectsWith(
        store.append(withOutbox(own, org.id, "limit-one-append-3", at, { quotas: [quota] }).request),
        QuotaExceeded,
      );
    });

    it("refuses over any one limit, hinting when the oldest counted message leaves the window", async () => {
      const own = newId();
      const windowMs = 60_000;
      const t0 = Date.parse("2030-01-01T00:00:00.000Z");
      const user1 = { key: "sms:user:1", limit: 2, windowMs };
      const number = { key: "sms:number:+41791234567", limit: 5, windowMs };
      const send = (name: string, atMs: number, quotas: SendQuota[]) =>
        store.append(withOutbox(own, org.id, name, new Date(atMs), { quotas }).request);
      await send("w1", t0, [user1, number]);
      await send("w2", t0 + 1000, [user1, number]);
      const refused = await rejectsWith(send("w3", t0 + 2000, [number, user1]), QuotaExceeded);
      assert.equal(refused.key, user1.key);
      assert.equal(refused.retryAfterMs, windowMs - 2000);
      // Other keys are not held back, and the refused message was not counted.
      await send("w4", t0 + 3000, [number, { ...user1, key: "sms:user:2" }]);
      // Once the first message left the window, one more fits.
      await send("w5", t0 + windowMs + 1, [user1, number]);
      await rejectsWith(send("w6", t0 + windowMs + 2, [user1]), QuotaExceeded);
    });

    it("hands each due message to exactly one of several claiming nodes, in the order written", async () => {
      const own = newId();
      const at = new Date(clock);
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        const type = i % 2 === 0 ? "phone_verification" : "security_notice";
        const plan = withOutbox(own, org.id, `claim-${i}`, new Date(at.getTime() + i), { message: { type } });
        ids.push(plan.messages[0]!.id);
        await store.append(plan.request);
      }
      const later = new Date(at.getTime() + 1000);
      const rounds = await Promise.all(
        Array.from({ length: 8 }, (_, i) => claimAt(i % 2 === 0 ? store : other, own, later, 3)),
      );
      const claimed = rounds.flat();
      assert.deepEqual(claimed.map((m) => m.id).sort(), [...ids].sort(), "every message once, none twice");
      for (const round of rounds) {
        const order = round.map((m) => ids.indexOf(m.id));
        assert.deepEqual(
          order,
          [...order].sort((a, b) => a - b),
        );
      }
      assert.deepEqual(await claimAt(store, own, later), [], "a claimed message is not due");
      assert.equal(new Set(claimed.map((m) => m.claim)).size, claimed.length);
    });

    it("looks only at messages due from dueFrom on when given it, and tells when each was due", async () => {
      const own = newId();
      const at = new Date(clock);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const plan = withOutbox(own, org.id, `due-from-${i}`, new Date(at.getTime() + i * 10_000), {});
        ids.push(plan.messages[0]!.id);
        await store.append(plan.request);
      }
      const now = new Date(at.getTime() + 60_000);
      const dueFrom = new Date(at.getTime() + 10_000);
      const later = await store.claimOutbox(own, { now, staleBefore: new Date(0), limit: 10, dueFrom });
      assert.deepEqual(
        later.map((m) => [m.id, m.dueAt.getTime()]),
        [
          [ids[1], at.getTime() + 10_000],
          [ids[2], at.getTime() + 20_000],
        ],
      );
      // Without it, a look starts from the oldest: the first message was due all along.
      assert.deepEqual(
        (await claimAt(other, own, now)).map((m) => m.id),
        [ids[0]],
      );
    });

    it("puts a message back for later, and settles it only under its current claim", async () => {
      const own = newId();
      const at = new Date(clock);
      const plan = withOutbox(own, org.id, "retry", at, {});
      const m0 = plan.messages[0]!;
      await store.append(plan.request);
      const [first] = await claimAt(store, own, new Date(at.getTime() + 1));
      assert.ok(first);
      const nextAt = new Date(at.getTime() + 5000);
      assert.equal(await store.retryOutbox(own, first.id, "not-the-claim", nextAt, "HTTP 503"), false);
      assert.equal(await other.retryOutbox(own, first.id, first.claim, nextAt, "HTTP 503"), true);
      let [row] = await store.outboxOf(own, plan.after.id);
      assert.equal(row?.status, "pending");
      assert.equal(row?.note, "HTTP 503");
      assert.equal(row?.nextAttemptAt.getTime(), nextAt.getTime());
      assert.deepEqual(await claimAt(store, own, new Date(nextAt.getTime() - 1)), []);
      const [second] = await claimAt(other, own, nextAt);
      assert.equal(second?.id, m0.id);
      assert.equal(second?.attempt, 2);
      assert.notEqual(second?.claim, first.claim);

      // The first claim is gone: settling under it fails and takes its events with it.
      const u = plan.after;
      const record = userPlan(own, u, user.addOtpSms);
      await rejectsWith(store.append({ ...record.request, outbox: [settle(first)] }), OutboxClaimLost);
      assert.equal((await store.loadEvents(own, { type: "user", id: u.id }, 0)).length, u.sequence);

      await store.append({ ...record.request, outbox: [settle(second!)] });
      [row] = await other.outboxOf(own, u.id);
      assert.equal(row?.status, "sent");
      assert.equal(row?.hasText, false, "the text does not outlive the delivery");
      assert.equal(row?.providerMessageId, `SM${m0.id.slice(0, 8)}`);
      assert.equal(row?.settledAt?.getTime(), record.request.createdAt.getTime());
      assert.equal(row?.attempts, 2);
      assert.deepEqual(await store.getUser(own, u.id), record.after);
      // Settled is final: neither due again nor settled twice.
      assert.deepEqual(await claimAt(store, own, new Date(nextAt.getTime() + 3600_000)), []);
      await rejectsWith(
        store.append({
          ...record.request,
          writes: [],
          readModel: [],
          outbox: [settle(second!, "failed")],
        }),
        OutboxClaimLost,
      );
    });

    it("hands a message claimed too long ago out once more as abandoned, without another attempt", async () => {
      const own = newId();
      const at = new Date(clock);
      await store.append(withOutbox(own, org.id, "abandon", at, {}).request);
      const claimedAt = new Date(at.getTime() + 1);
      const [first] = await claimAt(store, own, claimedAt);
      assert.equal(first?.abandoned, false);
      // Not yet past the deadline: nobody gets it.
      assert.deepEqual(await claimAt(other, own, new Date(claimedAt.getTime() + 60_000), 10, claimedAt), []);
      const later = new Date(claimedAt.getTime() + 120_000);
      const taken = await Promise.all([
        claimAt(store, own, later, 10, new Date(claimedAt.getTime() + 1)),
        claimAt(other, own, later, 10, new Date(claimedAt.getTime() + 1)),
      ]);
      const again = taken.flat();
      assert.equal(again.length, 1, "one node takes it over");
      assert.equal(again[0]?.id, first?.id);
      assert.equal(again[0]?.abandoned, true);
      assert.equal(again[0]?.attempt, 1, "no new attempt is counted: nothing will be sent");
      assert.equal(await store.retryOutbox(own, first!.id, first!.claim, later, "late"), false);
    });

    it("forgets settled messages and old limit counts when pruned", async () => {
      const own = newId();
      const t0 = Date.parse("2031-01-01T00:00:00.000Z");
      const quota = { key: "sms:user:prune", limit: 1, windowMs: 3600_000 * 24 };
      const plan = withOutbox(own, org.id, "prune", new Date(t0), { quotas: [quota] });
      await store.append(plan.request);
      const pending = withOutbox(own, org.id, "prune-pending", new Date(t0 + 1), {});
      await store.append(pending.request);
      const [mine] = await claimAt(store, own, new Date(t0 + 1), 1);
      assert.equal(mine?.id, plan.messages[0]!.id);
      await store.append({ ...userPlan(own, plan.after, user.addOtpSms).request, outbox: [settle(mine!)] });
      await store.pruneOutbox(own, new Date(Date.now() + 1000), new Date(t0 + 1));
      assert.deepEqual(await store.outboxOf(own, plan.after.id), []);
      assert.equal((await store.outboxOf(own, pending.after.id)).length, 1, "unsettled messages stay");
      // The count went with it: the limit lets another message through.
      await store.append(withOutbox(own, org.id, "prune-2", new Date(t0 + 2), { quotas: [quota] }).request);
    });
  });
}

describe("SQLite's own migrations", () => {
  // Only SQLite's lower() ever let two such names in; PostgreSQL's folds them in a UTF-8 locale.
  it("will not start on two usernames that differ only in the case of a letter beyond ASCII", async () => {
    const own = await freshDatabase("sqlite");
    try {
      const b = bootstrapPlan();
      const upper = newUserPlan(b.instanceId, b.org.id, human("ÅSA"));
      const lower = newUserPlan(b.instanceId, b.org.id, human("åsa"));
      await writeAtSchemaVersion1(own.config, b.instanceId, [upper.after, lower.after]);
      await assert.rejects(openStore(own.config), /schema migration 5 .*UNIQUE constraint failed/);
    } finally {
      await own.drop();
    }
  });
});
