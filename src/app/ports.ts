import type { AggregateRef, NewEvent, RecordedEvent } from "../domain/events.ts";
import type { Membership } from "../domain/permissions.ts";
import type { SessionState } from "../domain/session/state.ts";
import type { SmsType } from "../domain/user/events.ts";
import type { UserState } from "../domain/user/state.ts";
import type { UserSearchFields } from "./projection.ts";

// ---- Storage -------------------------------------------------------------------------------
// One contract, implemented by store/sqlite and store/postgres and held to it by the same
// contract suite (test/store-contract.test.ts).

export interface AggregateWrite {
  readonly ref: AggregateRef;
  // The organization that owns the aggregate (ZITADEL's resource owner).
  readonly owner: string;
  // The sequence the decision was made on; the append fails with ConcurrencyError if the
  // aggregate has moved on since.
  readonly expectedSequence: number;
  readonly events: readonly NewEvent[];
}

// Read models change in the same transaction as the events they follow from.
export type ReadModelChange =
  | { readonly kind: "user.put"; readonly user: UserState }
  | {
      readonly kind: "token.put";
      readonly tokenId: string;
      readonly tokenHash: string;
      readonly userId: string;
      readonly expiresAt: string | null;
    }
  | { readonly kind: "token.delete"; readonly tokenId: string }
  | { readonly kind: "token.deleteOfUser"; readonly userId: string }
  | { readonly kind: "member.put"; readonly userId: string; readonly membership: Membership }
  | { readonly kind: "member.delete"; readonly userId: string; readonly scopeId: string }
  | { readonly kind: "member.deleteOfUser"; readonly userId: string }
  | { readonly kind: "org.put"; readonly id: string; readonly name: string; readonly sequence: number }
  | {
      readonly kind: "instance.put";
      readonly id: string;
      readonly name: string;
      readonly defaultOrgId: string;
    }
  // A terminated session leaves the read model; its events stay in the log.
  | { readonly kind: "session.put"; readonly session: SessionState }
  | { readonly kind: "session.delete"; readonly sessionId: string };

export interface AppendRequest {
  readonly instanceId: string;
  readonly creator: string;
  readonly createdAt: Date;
  readonly writes: readonly AggregateWrite[];
  readonly readModel: readonly ReadModelChange[];
  // SMS that the events call for, or the outcome of one: stored in the same transaction, so a
  // message exists exactly when the event that needs it does.
  readonly outbox?: readonly OutboxChange[];
  // No caller waits for this append (the SMS worker recording what became of a message). SQLite
  // runs it after the callers' appends of its group commit, so that when both were decided on
  // the same state of an aggregate, the caller's is written and this one is planned again, not
  // the other way round. PostgreSQL ignores it: the locks set its batches' order, and there the
  // worker's appends were not seen to conflict with callers' (docs/benchmarks.md, 14).
  readonly background?: boolean;
}

// ---- The SMS outbox --------------------------------------------------------------------------

export interface OutboxMessage {
  // Unique per instance; the idempotency key a provider that takes one is given.
  readonly id: string;
  readonly userId: string;
  readonly type: SmsType;
  // E.164.
  readonly to: string;
  readonly language: string;
  // The text, sealed when an outbox key is configured: it may carry a code. Blanked once the
  // message is settled.
  readonly sealedText: string;
  // After this the message is pointless (the code in it expired) and is not sent.
  readonly expiresAt: Date | null;
}

// At most `limit` messages counted under `key` in the `windowMs` before the append; the
// appended message is counted under it too.
export interface SendQuota {
  readonly key: string;
  readonly limit: number;
  readonly windowMs: number;
}

export type OutboxFinalStatus = "sent" | "failed" | "expired";
export type OutboxStatus = "pending" | "sending" | OutboxFinalStatus;

export type OutboxChange =
  | { readonly kind: "enqueue"; readonly message: OutboxMessage; readonly quotas: readonly SendQuota[] }
  | {
      // Records a claimed message's outcome and blanks its text. The append fails with
      // OutboxClaimLost when `claim` is no longer the message's current claim.
      readonly kind: "settle";
      readonly id: string;
      readonly claim: string;
      readonly status: OutboxFinalStatus;
      readonly note: string;
      readonly providerMessageId: string | null;
    };

// A message a worker took to send. Its status is "sending" from the claim on: the attempt is
// recorded before the provider is called, so a crash leaves a trace instead of a resend.
export interface ClaimedMessage extends OutboxMessage {
  readonly createdAt: Date;
  // The nextAttemptAt it was claimed under.
  readonly dueAt: Date;
  // Attempts started, this one included.
  readonly attempt: number;
  // Names this claim; settling or retrying needs it.
  readonly claim: string;
  // True when the message was found "sending" past its deadline: whoever sent it stopped
  // before recording the outcome. It must be settled, never sent again.
  readonly abandoned: boolean;
}

export interface OutboxRow {
  readonly id: string;
  readonly userId: string;
  readonly type: SmsType;
  readonly to: string;
  readonly status: OutboxStatus;
  readonly attempts: number;
  readonly createdAt: Date;
  readonly nextAttemptAt: Date;
  readonly settledAt: Date | null;
  readonly note: string | null;
  readonly providerMessageId: string | null;
  // Whether the (sealed) text is still stored.
  readonly hasText: boolean;
}

// A sending limit refused the append; nothing was written.
export class QuotaExceeded extends Error {
  override readonly name = "QuotaExceeded";
  constructor(
    readonly key: string,
    // When the oldest counted message leaves the window.
    readonly retryAfterMs: number,
  ) {
    super(`quota ${key} exceeded`);
  }
}

// Another worker took the message over (it had been claimed too long ago); nothing was written.
export class OutboxClaimLost extends Error {
  override readonly name = "OutboxClaimLost";
}

// Another writer appended to the aggregate first: reload, decide again.
export class ConcurrencyError extends Error {
  override readonly name = "ConcurrencyError";
}

// A read model's uniqueness rule refused the write (a username already taken, ...).
export class UniqueViolation extends Error {
  override readonly name = "UniqueViolation";
  constructor(readonly what: "username" | "instance") {
    super(`unique ${what} violated`);
  }
}

// The database cannot be reached or did not answer in time.
export class StoreUnavailable extends Error {
  override readonly name = "StoreUnavailable";
}

export interface InstanceRow {
  readonly id: string;
  readonly name: string;
  readonly defaultOrgId: string;
}

export interface TokenRow {
  readonly tokenId: string;
  readonly userId: string;
  readonly expiresAt: string | null;
}

// A personal access token with what authenticating it needs, read in one go and as of one
// moment: a call costs one trip to the database to find out who makes it.
export interface TokenHolder {
  readonly token: TokenRow;
  // null when the token's user has no row (it was never projected).
  readonly user: UserState | null;
  readonly memberships: Membership[];
}

// A user's read-model row, which is its snapshot, and the events written after it.
export interface UserWithTail {
  readonly snapshot: UserState | null;
  // Events of the user above the snapshot's sequence (all of them without a snapshot), in order.
  readonly tail: RecordedEvent[];
}

export interface OrgRow {
  readonly id: string;
  readonly name: string;
}

// Read-model rows as stored, column for column, for verify to hold against a rebuild from the log.
export interface StoredUser {
  readonly id: string;
  readonly state: UserState;
  // Kept beside the state for lookups and uniqueness; they must agree with it.
  readonly orgId: string;
  readonly username: string;
  readonly deleted: boolean;
  readonly sequence: number;
  readonly search: UserSearchFields;
}

export interface StoredToken {
  readonly tokenId: string;
  readonly tokenHash: string;
  readonly userId: string;
  readonly expiresAt: string | null;
}

export interface StoredMember {
  readonly userId: string;
  readonly scopeKind: "instance" | "org";
  // The organization's id, or the instance's for an instance membership.
  readonly scopeId: string;
  readonly roles: readonly string[];
}

export interface StoredSession {
  readonly id: string;
  readonly state: SessionState;
  // Kept beside the state for lookups; they must agree with it.
  readonly userId: string;
  readonly creator: string;
  readonly createdAt: string;
}

export interface StoredOrg {
  readonly id: string;
  readonly name: string;
  readonly sequence: number;
}

// One instance's event log and read models as of a single moment, so that a rebuild from this
// log must equal these rows even while other nodes go on writing.
export interface Snapshot {
  readLog(afterPosition: number, limit: number): Promise<RecordedEvent[]>;
  // In id order after `afterId` ("" for the first page): user states are the bulk of the read models.
  listUsers(afterId: string, limit: number): Promise<StoredUser[]>;
  listTokens(): Promise<StoredToken[]>;
  listMembers(): Promise<StoredMember[]>;
  listOrgs(): Promise<StoredOrg[]>;
  listSessions(): Promise<StoredSession[]>;
  getInstance(): Promise<InstanceRow | null>;
}

// How busy a connection pool is, for metrics.
export interface PoolStats {
  // Connections open (idle or in use), of at most `max`.
  readonly total: number;
  readonly idle: number;
  readonly max: number;
  // Callers waiting for a connection because all are in use.
  readonly waiting: number;
}

// Which sessions a ListSessions may see, and of those which it asks for.
export interface SessionQuery {
  // Only the sessions this user created or that are its own, and those of users in these
  // organizations; null: every session of the instance.
  readonly visibleTo: { readonly userId: string; readonly orgIds: readonly string[] } | null;
  readonly userId?: string | undefined;
  readonly ids?: readonly string[] | undefined;
  readonly creator?: string | undefined;
  readonly offset: number;
  readonly limit: number;
  readonly ascending: boolean;
}

// ---- Searching users ---------------------------------------------------------------------------
// The filters of ZITADEL's ListUsers, as a tree each adapter turns into SQL.

export type TextMethod =
  | "equals"
  | "equalsIgnoreCase"
  | "startsWith"
  | "startsWithIgnoreCase"
  | "contains"
  | "containsIgnoreCase"
  | "endsWith"
  | "endsWithIgnoreCase";

export type UserTextField =
  | "username"
  | "email"
  | "phone"
  | "givenName"
  | "familyName"
  | "nickName"
  | "displayName";

export type UserFilter =
  | {
      readonly kind: "text";
      readonly field: UserTextField;
      readonly method: TextMethod;
      readonly value: string;
    }
  | { readonly kind: "org"; readonly orgId: string }
  | { readonly kind: "ids"; readonly ids: readonly string[] }
  // Addresses compared without regard to case.
  | { readonly kind: "emails"; readonly emails: readonly string[] }
  | { readonly kind: "type"; readonly type: "human" | "machine" }
  | { readonly kind: "state"; readonly state: "active" | "locked" | "inactive" }
  | { readonly kind: "always"; readonly value: boolean }
  | { readonly kind: "and" | "or"; readonly filters: readonly UserFilter[] }
  | { readonly kind: "not"; readonly filter: UserFilter };

export type UserSortField =
  | "id"
  | "username"
  | "email"
  | "givenName"
  | "familyName"
  | "nickName"
  | "displayName"
  | "type"
  | "state"
  | "createdAt";

export interface UserSearch {
  readonly filter: UserFilter;
  // Whose users the caller may see: all of the instance, or those of some organizations and the
  // caller itself.
  readonly visible: { readonly all: true } | { readonly orgIds: readonly string[]; readonly userId: string };
  // Ties are broken by id, in the same direction, so that pages neither overlap nor skip.
  readonly sort: UserSortField;
  readonly ascending: boolean;
  readonly offset: number;
  readonly limit: number;
}

export interface UserPage {
  // How many users match, whatever the page.
  readonly total: number;
  readonly users: UserState[];
}

export interface Store {
  readonly dialect: "sqlite" | "postgres";
  // Events of one aggregate with a sequence above `afterSequence`, in order.
  loadEvents(instanceId: string, ref: AggregateRef, afterSequence: number): Promise<RecordedEvent[]>;
  // Appends atomically: all writes and read-model changes, or nothing.
  append(request: AppendRequest): Promise<RecordedEvent[]>;
  // The last `limit` events of one aggregate, newest first.
  latestEvents(instanceId: string, ref: AggregateRef, limit: number): Promise<RecordedEvent[]>;
  // Events of the instance in log order, for audit and for rebuilding read models.
  readLog(instanceId: string, afterPosition: number, limit: number): Promise<RecordedEvent[]>;

  getInstance(): Promise<InstanceRow | null>;
  getUser(instanceId: string, userId: string): Promise<UserState | null>;
  // getUser and loadEvents after its sequence, as one read.
  loadUser(instanceId: string, userId: string): Promise<UserWithTail>;
  // Users that are not deleted and match the search.
  searchUsers(instanceId: string, search: UserSearch): Promise<UserPage>;
  getOrg(instanceId: string, orgId: string): Promise<OrgRow | null>;
  findTokenHolder(instanceId: string, tokenHash: string): Promise<TokenHolder | null>;
  membershipsOf(instanceId: string, userId: string): Promise<Membership[]>;
  // Runs `read` on a consistent, read-only view; the view is not to be used after it returns.
  snapshot<T>(instanceId: string, read: (view: Snapshot) => Promise<T>): Promise<T>;
  // Usernames compare case-insensitively, as the uniqueness rule does; deleted users are not found.
  userIdByLoginName(instanceId: string, loginName: string): Promise<string | null>;
  getSession(instanceId: string, sessionId: string): Promise<SessionState | null>;
  // Sessions of a user that are not terminated (expired ones included).
  sessionsOfUser(instanceId: string, userId: string): Promise<SessionState[]>;
  listSessions(
    instanceId: string,
    query: SessionQuery,
  ): Promise<{ readonly total: number; readonly sessions: SessionState[] }>;

  // Takes up to `limit` messages that are due (pending with nextAttemptAt <= now), or that
  // were claimed before `staleBefore` and never settled; each one by exactly one caller,
  // however many nodes ask at once. With `dueFrom`, only those whose nextAttemptAt is at or
  // after it: a look that skips what earlier looks already went through.
  claimOutbox(
    instanceId: string,
    options: {
      readonly now: Date;
      readonly staleBefore: Date;
      readonly limit: number;
      readonly dueFrom?: Date | undefined;
    },
  ): Promise<ClaimedMessage[]>;
  // Puts a claimed message back for another attempt; false when the claim is no longer held.
  retryOutbox(
    instanceId: string,
    id: string,
    claim: string,
    nextAttemptAt: Date,
    note: string,
  ): Promise<boolean>;
  outboxOf(instanceId: string, userId: string): Promise<OutboxRow[]>;
  // Forgets messages settled before `settledBefore` and limit counts from before `countedBefore`.
  pruneOutbox(instanceId: string, settledBefore: Date, countedBefore: Date): Promise<void>;

  // null where there is no pool to watch (SQLite: one embedded connection).
  poolStats(): PoolStats | null;
  ping(): Promise<void>;
  close(): Promise<void>;
}

// ---- Other ports -----------------------------------------------------------------------------

export interface SmsMessage {
  // The outbox id: the same on every attempt, so a receiver can tell a message it has seen.
  readonly id: string;
  readonly to: string;
  readonly text: string;
  readonly type: SmsType;
  readonly language: string;
  readonly expiresAt: Date | null;
}

// An SMS provider. `send` resolves once the provider accepted the message, and otherwise
// throws SmsDeliveryError saying whether the message may have reached it.
export interface SmsSender {
  readonly name: string;
  send(message: SmsMessage): Promise<{ readonly providerMessageId: string | null }>;
}

// transient: it did not go out, and trying again later can work (no connection, 429, 5xx);
// permanent: the provider refused it, trying again will not help (4xx);
// unknown: the request may have reached the provider (cut off mid-way, no answer in time), so
// sending it again could deliver it twice.
export type DeliveryOutcome = "transient" | "permanent" | "unknown";

export class SmsDeliveryError extends Error {
  override readonly name = "SmsDeliveryError";
  constructor(
    readonly outcome: DeliveryOutcome,
    message: string,
    // The provider's own hint (Retry-After), when it gave one.
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

// Hashes passwords off the event loop (a worker thread does the work) and verifies them in
// constant time. `verify` answers false for a hash it cannot read rather than throwing.
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(encodedHash: string, password: string): Promise<boolean>;
  // An imported bcrypt hash, or argon2id at other costs than configured: hash again at sign-in.
  needsRehash(encodedHash: string): boolean;
}

export interface Clock {
  now(): Date;
}
