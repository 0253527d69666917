import type { RecordedEvent } from "../events.ts";
import {
  type HumanAdded,
  type MachineAdded,
  type PasswordChanged,
  type PasswordCodeAdded,
  type PatAdded,
  type PatRemoved,
  type PhoneChanged,
  type PhoneCodeAdded,
  type Profile,
  UserEvent,
} from "./events.ts";

export interface PendingCode {
  readonly hash: string;
  readonly expiresAt: string;
  readonly failedAttempts: number;
}

export interface UserState {
  readonly id: string;
  readonly orgId: string;
  // 0 until the user is added: a user whose sequence is 0 does not exist.
  readonly sequence: number;
  readonly deleted: boolean;
  readonly kind: "human" | "machine" | null;
  readonly username: string;
  readonly createdAt: string | null;
  readonly changedAt: string | null;
  readonly profile: Profile | null;
  readonly email: string;
  readonly emailVerified: boolean;
  readonly machine: { readonly name: string; readonly description: string } | null;
  readonly phone: string | null;
  readonly phoneVerified: boolean;
  readonly phoneCode: PendingCode | null;
  readonly otpSms: boolean;
  // The sequence of the event that last added OTP SMS: a challenge remembers it, so that a code
  // issued before a removal stays void even after the factor is added again.
  readonly otpSmsSince: number;
  readonly tokens: readonly { readonly id: string; readonly expiresAt: string | null }[];
  // ZITADEL's user states that Latchkey has: a locked or inactive user cannot sign in.
  readonly state: "active" | "locked" | "inactive";
  readonly passwordHash: string | null;
  readonly passwordChangeRequired: boolean;
  readonly passwordCode: PendingCode | null;
  // Wrong passwords and wrong OTP codes since the last success or unlock, for the lockout policy.
  readonly failedPasswordAttempts: number;
  readonly failedOtpAttempts: number;
}

export const emptyUser = (id: string): UserState => ({
  id,
  orgId: "",
  sequence: 0,
  deleted: false,
  kind: null,
  username: "",
  createdAt: null,
  changedAt: null,
  profile: null,
  email: "",
  emailVerified: false,
  machine: null,
  phone: null,
  phoneVerified: false,
  phoneCode: null,
  otpSms: false,
  otpSmsSince: 0,
  tokens: [],
  state: "active",
  passwordHash: null,
  passwordChangeRequired: false,
  passwordCode: null,
  failedPasswordAttempts: 0,
  failedOtpAttempts: 0,
});

// Snapshots written before a field existed lack it: the empty user's defaults fill the gaps.
export const upgradeUser = (snapshot: UserState): UserState => ({ ...emptyUser(snapshot.id), ...snapshot });

export const userExists = (s: UserState) => s.sequence > 0 && !s.deleted && s.kind !== null;

export const userActive = (s: UserState) => userExists(s) && s.state === "active";

// After this many wrong attempts a code is void and a new one must be requested.
export const maxCodeAttempts = 5;

function apply(s: UserState, e: RecordedEvent): UserState {
  const p = e.payload ?? {};
  switch (e.type) {
    case UserEvent.humanAdded: {
      const h = p as unknown as HumanAdded;
      return {
        ...s,
        kind: "human",
        orgId: e.owner,
        username: h.username,
        profile: h.profile,
        email: h.email,
        emailVerified: h.emailVerified,
      };
    }
    case UserEvent.machineAdded: {
      const m = p as unknown as MachineAdded;
      return {
        ...s,
        kind: "machine",
        orgId: e.owner,
        username: m.username,
        machine: { name: m.name, description: m.description },
      };
    }
    case UserEvent.removed:
      return {
        ...s,
        deleted: true,
        phoneVerified: false,
        otpSms: false,
        phoneCode: null,
        tokens: [],
        passwordHash: null,
        passwordCode: null,
      };
    case UserEvent.phoneChanged:
      return { ...s, phone: (p as unknown as PhoneChanged).phone, phoneVerified: false, phoneCode: null };
    case UserEvent.phoneCodeAdded: {
      const c = p as unknown as PhoneCodeAdded;
      return { ...s, phoneCode: { hash: c.codeHash, expiresAt: c.expiresAt, failedAttempts: 0 } };
    }
    case UserEvent.phoneVerified:
      return { ...s, phoneVerified: true, phoneCode: null };
    case UserEvent.phoneVerificationFailed: {
      if (!s.phoneCode) return s;
      const failedAttempts = s.phoneCode.failedAttempts + 1;
      return {
        ...s,
        phoneCode: failedAttempts >= maxCodeAttempts ? null : { ...s.phoneCode, failedAttempts },
      };
    }
    case UserEvent.phoneRemoved:
      return { ...s, phone: null, phoneVerified: false, phoneCode: null, otpSms: false };
    case UserEvent.otpSmsAdded:
      return { ...s, otpSms: true, otpSmsSince: e.sequence };
    case UserEvent.otpSmsRemoved:
      return { ...s, otpSms: false };
    case UserEvent.patAdded: {
      const t = p as unknown as PatAdded;
      return { ...s, tokens: [...s.tokens, { id: t.tokenId, expiresAt: t.expiresAt }] };
    }
    case UserEvent.patRemoved: {
      const { tokenId } = p as unknown as PatRemoved;
      return { ...s, tokens: s.tokens.filter((t) => t.id !== tokenId) };
    }
    case UserEvent.passwordChanged: {
      const c = p as unknown as PasswordChanged;
      return {
        ...s,
        passwordHash: c.encodedHash,
        passwordChangeRequired: c.changeRequired,
        passwordCode: null,
        failedPasswordAttempts: 0,
      };
    }
    case UserEvent.passwordHashUpdated:
      return { ...s, passwordHash: (p as unknown as { encodedHash: string }).encodedHash };
    case UserEvent.passwordCodeAdded: {
      const c = p as unknown as PasswordCodeAdded;
      return { ...s, passwordCode: { hash: c.codeHash, expiresAt: c.expiresAt, failedAttempts: 0 } };
    }
    case UserEvent.passwordCheckSucceeded:
      return { ...s, failedPasswordAttempts: 0 };
    case UserEvent.passwordCheckFailed:
      return { ...s, failedPasswordAttempts: s.failedPasswordAttempts + 1 };
    case UserEvent.otpSmsCheckSucceeded:
      return { ...s, failedOtpAttempts: 0 };
    case UserEvent.otpSmsCheckFailed:
      return { ...s, failedOtpAttempts: s.failedOtpAttempts + 1 };
    case UserEvent.locked:
      return { ...s, state: "locked" };
    case UserEvent.unlocked:
      return { ...s, state: "active", failedPasswordAttempts: 0, failedOtpAttempts: 0 };
    case UserEvent.deactivated:
      return { ...s, state: "inactive" };
    case UserEvent.reactivated:
      return { ...s, state: "active", failedPasswordAttempts: 0, failedOtpAttempts: 0 };
    default:
      return s;
  }
}

// Folds events into state. Every event moves sequence and change time, including those this
// fold otherwise ignores, so that `sequence` is always the aggregate's last sequence.
export function foldUser(state: UserState, events: readonly RecordedEvent[]): UserState {
  let s = state;
  for (const e of events) {
    const next = apply(s, e);
    const createdAt = e.createdAt.toISOString();
    s = { ...next, sequence: e.sequence, changedAt: createdAt, createdAt: s.createdAt ?? createdAt };
  }
  return s;
}
