import type { RecordedEvent } from "../events.ts";
import type { OtpChallenge } from "../user/decide.ts";
import {
  type FactorChecked,
  type LifetimeSet,
  type MetadataSet,
  type OtpSmsChallenged,
  type SessionAdded,
  SessionEvent,
  type TokenSet,
  type UserAgent,
  type UserChecked,
} from "./events.ts";

// A sign-in in progress or done: which checks passed and when, and the hash of its current token.
export interface SessionState {
  readonly id: string;
  // 0 until the session is added.
  readonly sequence: number;
  readonly creator: string;
  readonly createdAt: string | null;
  readonly changedAt: string | null;
  readonly terminated: boolean;
  readonly userAgent: UserAgent | null;
  readonly userId: string;
  readonly userOrgId: string;
  readonly userCheckedAt: string | null;
  readonly passwordCheckedAt: string | null;
  readonly otpSmsCheckedAt: string | null;
  readonly otpSmsChallenge: OtpChallenge | null;
  readonly tokenHash: string;
  readonly expiresAt: string | null;
  readonly metadata: Readonly<Record<string, string>>;
}

export const emptySession = (id: string): SessionState => ({
  id,
  sequence: 0,
  creator: "",
  createdAt: null,
  changedAt: null,
  terminated: false,
  userAgent: null,
  userId: "",
  userOrgId: "",
  userCheckedAt: null,
  passwordCheckedAt: null,
  otpSmsCheckedAt: null,
  otpSmsChallenge: null,
  tokenHash: "",
  expiresAt: null,
  metadata: {},
});

export const sessionExists = (s: SessionState) => s.sequence > 0;

export const sessionExpired = (s: SessionState, now: Date) =>
  s.expiresAt !== null && new Date(s.expiresAt) <= now;

// Usable for further checks and as a bearer: added, not terminated, not expired.
export const sessionActive = (s: SessionState, now: Date) =>
  sessionExists(s) && !s.terminated && !sessionExpired(s, now);

function apply(s: SessionState, e: RecordedEvent): SessionState {
  const p = e.payload ?? {};
  switch (e.type) {
    case SessionEvent.added:
      return { ...s, creator: e.creator, userAgent: (p as unknown as SessionAdded).userAgent ?? null };
    case SessionEvent.userChecked: {
      const u = p as unknown as UserChecked;
      return { ...s, userId: u.userId, userOrgId: u.userResourceOwner, userCheckedAt: u.checkedAt };
    }
    case SessionEvent.passwordChecked:
      return { ...s, passwordCheckedAt: (p as unknown as FactorChecked).checkedAt };
    case SessionEvent.otpSmsChallenged: {
      const c = p as unknown as OtpSmsChallenged;
      return {
        ...s,
        otpSmsChallenge: { hash: c.codeHash, expiresAt: c.expiresAt, otpSmsSince: c.otpSmsSince },
      };
    }
    // A code works once: checking it ends the challenge.
    case SessionEvent.otpSmsChecked:
      return { ...s, otpSmsChallenge: null, otpSmsCheckedAt: (p as unknown as FactorChecked).checkedAt };
    case SessionEvent.tokenSet:
      return { ...s, tokenHash: (p as unknown as TokenSet).tokenHash };
    case SessionEvent.metadataSet:
      return { ...s, metadata: (p as unknown as MetadataSet).metadata };
    case SessionEvent.lifetimeSet:
      return {
        ...s,
        expiresAt: new Date(e.createdAt.getTime() + (p as unknown as LifetimeSet).lifetimeMs).toISOString(),
      };
    case SessionEvent.terminated:
      return { ...s, terminated: true, otpSmsChallenge: null };
    default:
      return s;
  }
}

export function foldSession(state: SessionState, events: readonly RecordedEvent[]): SessionState {
  let s = state;
  for (const e of events) {
    const next = apply(s, e);
    const at = e.createdAt.toISOString();
    s = { ...next, sequence: e.sequence, changedAt: at, createdAt: s.createdAt ?? at };
  }
  return s;
}
