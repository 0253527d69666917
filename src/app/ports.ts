import type { AggregateRef, NewEvent, RecordedEvent } from "../domain/events.ts";
import type { Membership } from "../domain/permissions.ts";
import type { UserState } from "../domain/user/state.ts";

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
    };

export interface AppendRequest {
  readonly instanceId: string;
  readonly creator: string;
  readonly createdAt: Date;
  readonly writes: readonly AggregateWrite[];
  readonly readModel: readonly ReadModelChange[];
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

export interface OrgRow {
  readonly id: string;
  readonly name: string;
}

export interface Store {
  readonly dialect: "sqlite" | "postgres";
  // Events of one aggregate with a sequence above `afterSequence`, in order.
  loadEvents(instanceId: string, ref: AggregateRef, afterSequence: number): Promise<RecordedEvent[]>;
  // Appends atomically: all writes and read-model changes, or nothing.
  append(request: AppendRequest): Promise<RecordedEvent[]>;
  // Events of the instance in log order, for audit and for rebuilding read models.
  readLog(instanceId: string, afterPosition: number, limit: number): Promise<RecordedEvent[]>;

  getInstance(): Promise<InstanceRow | null>;
  getUser(instanceId: string, userId: string): Promise<UserState | null>;
  getOrg(instanceId: string, orgId: string): Promise<OrgRow | null>;
  findToken(instanceId: string, tokenHash: string): Promise<TokenRow | null>;
  membershipsOf(instanceId: string, userId: string): Promise<Membership[]>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

// ---- Other ports -----------------------------------------------------------------------------

export interface SmsMessage {
  readonly to: string;
  readonly text: string;
  readonly type: "phone_verification" | "otp" | "security_notice";
}

export interface SmsSender {
  send(message: SmsMessage): Promise<void>;
}

export interface Clock {
  now(): Date;
}
