import { invalid, precondition } from "../errors.ts";
import type { NewEvent } from "../events.ts";
import type { LockoutPolicy } from "../policy.ts";
import { assertCanChallengeOtpSms, checkOtpSms, checkPassword, type IssuedCode } from "../user/decide.ts";
import type { UserState } from "../user/state.ts";
import { userActive } from "../user/state.ts";
import {
  type FactorChecked,
  type OtpSmsChallenged,
  type SessionAdded,
  SessionEvent,
  type UserAgent,
  type UserChecked,
} from "./events.ts";
import { type SessionState, sessionExists, sessionExpired } from "./state.ts";

// One CreateSession or SetSession: the checks and challenges it asks for, with what the
// application layer prepared outside the domain (the password verified against its hash off
// the event loop, a fresh code and token already hashed).
export interface SignInStep {
  readonly now: Date;
  // Present on CreateSession only.
  readonly start?: { readonly userAgent: UserAgent | null };
  // The user a user check named, as the application found it by id or login name.
  readonly checkUser?: UserState;
  // The user the session is bound to once the user check (if any) is applied; null if none.
  readonly user: UserState | null;
  readonly password?: { readonly matches: boolean; readonly rehashed?: string | undefined };
  readonly otpSms?: { readonly matches: (hash: string) => boolean };
  readonly otpSmsChallenge?: IssuedCode;
  // Values are base64; an empty value removes the key.
  readonly metadata?: Readonly<Record<string, string>>;
  readonly lifetimeMs?: number;
  readonly tokenHash: string;
  readonly lockout: LockoutPolicy;
}

// Events for the session and for its user, written together. A failed check still records
// its failure (and a lock) on the user, and nothing on the session.
export interface SignInDecision {
  readonly session: readonly NewEvent[];
  readonly user: readonly NewEvent[];
  readonly error?: Error;
}

export function assertNotInvalidated(s: SessionState, now: Date): void {
  if (!sessionExists(s)) throw precondition("COMMAND-Flk38", "Session does not exist");
  if (s.terminated) throw precondition("COMMAND-Hewfq", "Session is terminated");
  if (sessionExpired(s, now)) throw precondition("COMMAND-Hkl3d", "Session has expired");
}

const checked = (type: string, now: Date): NewEvent => ({
  type,
  payload: { checkedAt: now.toISOString() } satisfies FactorChecked,
});

function metadataChange(
  current: Readonly<Record<string, string>>,
  requested: Readonly<Record<string, string>>,
): Record<string, string> | null {
  const next: Record<string, string> = { ...current };
  let changed = false;
  for (const [key, value] of Object.entries(requested)) {
    if (value !== "" && next[key] !== value) {
      next[key] = value;
      changed = true;
    } else if (value === "" && key in next) {
      delete next[key];
      changed = true;
    }
  }
  return changed ? next : null;
}

export function signInStep(s: SessionState, step: SignInStep): SignInDecision {
  const session: NewEvent[] = [];
  const user: NewEvent[] = [];
  if (step.start) {
    if (sessionExists(s)) throw precondition("LK-SESSION-EXISTS", "Session already exists");
    session.push({
      type: SessionEvent.added,
      payload: { userAgent: step.start.userAgent } satisfies SessionAdded,
    });
  } else {
    assertNotInvalidated(s, step.now);
  }

  let userId = s.userId;
  if (step.checkUser) {
    const target = step.checkUser;
    if (userId !== "" && userId !== target.id)
      throw invalid("LK-SESSION-USER", "The user of a session cannot be changed");
    if (!userActive(target)) throw precondition("SESSION-Gj4ko", "User is not active");
    userId = target.id;
    session.push({
      type: SessionEvent.userChecked,
      payload: {
        userId: target.id,
        userResourceOwner: target.orgId,
        checkedAt: step.now.toISOString(),
      } satisfies UserChecked,
    });
  }

  if (step.password) {
    if (userId === "" || !step.user) throw precondition("COMMAND-Sfw3f", "The session has no user yet");
    const d = checkPassword(step.user, {
      matches: step.password.matches,
      maxAttempts: step.lockout.maxPasswordAttempts,
      rehashed: step.password.rehashed,
    });
    if (d.error) return { session: [], user: d.events, error: d.error };
    user.push(...d.events);
    session.push(checked(SessionEvent.passwordChecked, step.now));
  }

  if (step.otpSms) {
    if (userId === "" || !step.user) throw precondition("COMMAND-VDrh3", "The session has no user yet");
    const d = checkOtpSms(step.user, s.otpSmsChallenge, {
      matches: step.otpSms.matches,
      now: step.now,
      maxAttempts: step.lockout.maxOtpAttempts,
    });
    if (d.error) return { session: [], user: d.events, error: d.error };
    user.push(...d.events);
    session.push(checked(SessionEvent.otpSmsChecked, step.now));
  }

  if (step.otpSmsChallenge) {
    if (userId === "" || !step.user) throw precondition("COMMAND-JKL3g", "The session has no user yet");
    assertCanChallengeOtpSms(step.user);
    session.push({
      type: SessionEvent.otpSmsChallenged,
      payload: {
        codeHash: step.otpSmsChallenge.hash,
        expiresAt: step.otpSmsChallenge.expiresAt.toISOString(),
        codeReturned: step.otpSmsChallenge.returned,
        otpSmsSince: step.user.otpSmsSince,
      } satisfies OtpSmsChallenged,
    });
  }

  if (step.metadata) {
    const next = metadataChange(s.metadata, step.metadata);
    if (next) session.push({ type: SessionEvent.metadataSet, payload: { metadata: next } });
  }

  if (step.lifetimeMs !== undefined) {
    if (step.lifetimeMs < 0) throw invalid("COMMAND-asEG4", "Session lifetime must be positive");
    if (step.lifetimeMs > 0)
      session.push({ type: SessionEvent.lifetimeSet, payload: { lifetimeMs: step.lifetimeMs } });
  }

  // Every change issues a new token, which replaces the one before.
  if (session.length > 0)
    session.push({ type: SessionEvent.tokenSet, payload: { tokenHash: step.tokenHash } });
  return { session, user };
}

// Terminating an ended session changes nothing, as in ZITADEL.
export function terminateSession(s: SessionState): readonly NewEvent[] {
  if (!sessionExists(s) || s.terminated) return [];
  return [{ type: SessionEvent.terminated, payload: null }];
}

// Which factors a session has verified, and whether it stands for its user as a bearer: the
// user is checked, at least one factor is verified, and every second factor the user has
// enrolled is among them, so that a session short of its second factor cannot remove it.
export function authenticatesUser(s: SessionState, u: UserState): boolean {
  if (s.userId === "" || s.userId !== u.id || !userActive(u)) return false;
  const factor = s.passwordCheckedAt !== null || s.otpSmsCheckedAt !== null;
  if (!factor) return false;
  if (u.otpSms && s.otpSmsCheckedAt === null) return false;
  return true;
}
