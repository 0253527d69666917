import { alreadyExists, invalid, notFound, precondition } from "../errors.ts";
import { type Decision, emit, type NewEvent } from "../events.ts";
import { date, email, requireId, rules, text } from "../input.ts";
import { reachesLimit } from "../policy.ts";
import {
  type PasswordChanged,
  type PhoneCodeAdded,
  type Profile,
  type SmsFailed,
  type SmsSent,
  UserEvent,
} from "./events.ts";
import { type UserState, userExists } from "./state.ts";

// A fresh verification code as the application layer made it: only its hash reaches events.
export interface IssuedCode {
  readonly hash: string;
  readonly expiresAt: Date;
  readonly returned: boolean;
}

export type PhoneInput =
  | { readonly phone: string; readonly verified: true }
  | { readonly phone: string; readonly verified: false; readonly code: IssuedCode };

export function requireUserId(userId: string, errorId: string): void {
  requireId(userId, errorId);
}

export function assertUserExists(s: UserState): void {
  if (!userExists(s)) throw notFound("COMMAND-4g3xq", "User could not be found");
}

const codeAdded = (code: IssuedCode): NewEvent => ({
  type: UserEvent.phoneCodeAdded,
  payload: {
    codeHash: code.hash,
    expiresAt: code.expiresAt.toISOString(),
    codeReturned: code.returned,
  } satisfies PhoneCodeAdded,
});

function phoneEvents(phone: PhoneInput): NewEvent[] {
  const changed: NewEvent = { type: UserEvent.phoneChanged, payload: { phone: phone.phone } };
  return phone.verified
    ? [changed, { type: UserEvent.phoneVerified, payload: null }]
    : [changed, codeAdded(phone.code)];
}

// A password as the application layer prepared it: already hashed (or an imported hash).
export interface PasswordInput {
  readonly encodedHash: string;
  readonly changeRequired: boolean;
}

const passwordChanged = (p: PasswordInput): NewEvent => ({
  type: UserEvent.passwordChanged,
  payload: { encodedHash: p.encodedHash, changeRequired: p.changeRequired } satisfies PasswordChanged,
});

export interface NewHuman {
  readonly username: string;
  readonly profile: Profile;
  readonly email: string;
  readonly emailVerified: boolean;
  readonly phone: PhoneInput | null;
  readonly password?: PasswordInput | null;
}

export function addHuman(s: UserState, h: NewHuman): Decision {
  if (s.sequence > 0) throw alreadyExists("COMMAND-k2unb", "User already exists");
  const p = h.profile;
  const profile: Profile = {
    givenName: text(p.givenName, rules.givenName),
    familyName: text(p.familyName, rules.familyName),
    nickName: text(p.nickName, rules.nickName),
    displayName: text(p.displayName, rules.displayName),
    preferredLanguage: text(p.preferredLanguage, rules.preferredLanguage),
    gender: p.gender,
  };
  const added: NewEvent = {
    type: UserEvent.humanAdded,
    payload: {
      username: text(h.username, rules.username),
      profile,
      email: email(h.email),
      emailVerified: h.emailVerified,
    },
  };
  return emit(
    added,
    ...(h.phone ? phoneEvents(h.phone) : []),
    ...(h.password ? [passwordChanged(h.password)] : []),
  );
}

export function addMachine(
  s: UserState,
  m: { username: string; name: string; description: string },
): Decision {
  if (s.sequence > 0) throw alreadyExists("COMMAND-k2unb", "User already exists");
  return emit({
    type: UserEvent.machineAdded,
    payload: {
      username: text(m.username, rules.username),
      name: text(m.name, rules.machineName),
      description: text(m.description, rules.description),
    },
  });
}

export function removeUser(s: UserState): Decision {
  assertUserExists(s);
  return emit({ type: UserEvent.removed, payload: null });
}

// Latchkey ends OTP SMS whenever the number it is bound to goes away or changes, so that a
// new, unverified number never receives one-time passwords.
const endOtpSms = (s: UserState): NewEvent[] =>
  s.otpSms ? [{ type: UserEvent.otpSmsRemoved, payload: null }] : [];

export function setPhone(s: UserState, phone: PhoneInput): Decision {
  assertUserExists(s);
  if (s.kind !== "human") throw precondition("LK-HUMAN", "Only human users have a phone");
  if (s.phone === phone.phone) throw precondition("COMMAND-Uch5e", "Phone number has not changed");
  return emit(...endOtpSms(s), ...phoneEvents(phone));
}

export function resendPhoneCode(s: UserState, code: IssuedCode): Decision {
  assertUserExists(s);
  if (!s.phone || s.phoneVerified || !s.phoneCode)
    throw precondition("PHONE-5xrra88eq8", "No phone verification code is pending");
  return emit(codeAdded(code));
}

export function verifyPhone(
  s: UserState,
  attempt: { readonly matches: (hash: string) => boolean; readonly now: Date },
): Decision {
  assertUserExists(s);
  if (!s.phone) throw notFound("COMMAND-ieJ2e", "User has no phone number");
  if (s.phoneVerified) throw precondition("COMMAND-2M9sf", "Phone number is already verified");
  if (!s.phoneCode) throw precondition("LK-NOCODE", "No verification code is pending: request a new one");
  const failed = { type: UserEvent.phoneVerificationFailed, payload: null };
  if (new Date(s.phoneCode.expiresAt) <= attempt.now)
    return { events: [failed], error: precondition("CODE-QvUQ4P", "Verification code has expired") };
  if (!attempt.matches(s.phoneCode.hash))
    return { events: [failed], error: invalid("COMMAND-eis9R", "Verification code is invalid") };
  return emit({ type: UserEvent.phoneVerified, payload: null });
}

export function removePhone(s: UserState): Decision {
  assertUserExists(s);
  if (!s.phone) throw notFound("COMMAND-ieJ2e", "User has no phone number");
  return emit(...endOtpSms(s), { type: UserEvent.phoneRemoved, payload: null });
}

export function addOtpSms(s: UserState): Decision {
  assertUserExists(s);
  if (s.otpSms) throw alreadyExists("COMMAND-Ad3g2", "OTP SMS is already set up");
  if (!s.phoneVerified) throw precondition("COMMAND-Q54j2", "Phone number must be verified first");
  return emit({ type: UserEvent.otpSmsAdded, payload: null });
}

export function removeOtpSms(s: UserState): Decision {
  assertUserExists(s);
  if (!s.otpSms) throw notFound("COMMAND-Sr3h3", "OTP SMS is not set up");
  return emit({ type: UserEvent.otpSmsRemoved, payload: null });
}

export function addPersonalAccessToken(
  s: UserState,
  t: { tokenId: string; tokenHash: string; expiresAt: Date | null; now: Date },
): Decision {
  assertUserExists(s);
  if (s.kind !== "machine")
    throw precondition("COMMAND-Dv2sf", "Personal access tokens are for machine users only");
  if (t.expiresAt && date(t.expiresAt, "Expiration date") <= t.now)
    throw invalid("COMMAND-dv3t5", "Expiration date is in the past");
  return emit({
    type: UserEvent.patAdded,
    payload: { tokenId: t.tokenId, tokenHash: t.tokenHash, expiresAt: t.expiresAt?.toISOString() ?? null },
  });
}

export function removePersonalAccessToken(s: UserState, tokenId: string): Decision {
  assertUserExists(s);
  if (!s.tokens.some((t) => t.id === tokenId))
    throw notFound("COMMAND-4m77G", "Personal access token could not be found");
  return emit({ type: UserEvent.patRemoved, payload: { tokenId } });
}

// The outcome of an SMS, on the user it went to. A user deleted meanwhile gets no event: the
// outbox still records what happened to the message.
export function recordSmsSent(s: UserState, sent: SmsSent): Decision {
  if (!userExists(s)) return emit();
  const type = sent.messageType === "phone_verification" ? UserEvent.phoneCodeSent : UserEvent.smsSent;
  return emit({ type, payload: { ...sent } });
}

export function recordSmsFailed(s: UserState, failed: SmsFailed): Decision {
  if (!userExists(s)) return emit();
  return emit({ type: UserEvent.smsFailed, payload: { ...failed } });
}

// ---- Passwords ------------------------------------------------------------------------------

function assertHuman(s: UserState): void {
  assertUserExists(s);
  if (s.kind !== "human") throw precondition("LK-HUMAN", "Only human users have a password");
}

export function setPassword(s: UserState, password: PasswordInput): Decision {
  assertHuman(s);
  return emit(passwordChanged(password));
}

// The code was checked by the caller of this decision only as far as computing `matches`.
export function setPasswordWithCode(
  s: UserState,
  attempt: { readonly matches: (hash: string) => boolean; readonly now: Date },
  password: PasswordInput,
): Decision {
  assertHuman(s);
  if (!s.passwordCode) throw precondition("COMMAND-2M9fs", "No password reset code is pending");
  if (new Date(s.passwordCode.expiresAt) <= attempt.now)
    throw precondition("CODE-QvUQ4P", "Password reset code has expired");
  if (!attempt.matches(s.passwordCode.hash)) throw invalid("CODE-woT0xc", "Password reset code is invalid");
  return emit(passwordChanged(password));
}

export function requestPasswordReset(s: UserState, code: IssuedCode): Decision {
  assertHuman(s);
  return emit({
    type: UserEvent.passwordCodeAdded,
    payload: {
      codeHash: code.hash,
      expiresAt: code.expiresAt.toISOString(),
      codeReturned: code.returned,
    } satisfies PhoneCodeAdded,
  });
}

const lockedError = () => precondition("COMMAND-JLK35", "User is locked");

// A failure is recorded even though the caller gets an error: it counts towards the lockout,
// and at the limit the user is locked in the same write.
function failure(failed: string, failedSoFar: number, max: number, error: Error): Decision {
  const events: NewEvent[] = [{ type: failed, payload: null }];
  if (reachesLimit(failedSoFar, max)) events.push({ type: UserEvent.locked, payload: null });
  return { events, error };
}

export function checkPassword(
  s: UserState,
  attempt: {
    readonly matches: boolean;
    readonly maxAttempts: number;
    // The same password hashed anew, when the stored hash is bcrypt or of older argon2id costs.
    readonly rehashed?: string | undefined;
  },
): Decision {
  if (!userExists(s)) throw precondition("COMMAND-3n77z", "User could not be found");
  if (s.state === "locked") throw lockedError();
  if (s.state === "inactive") throw precondition("SESSION-Gj4ko", "User is not active");
  if (!s.passwordHash) throw precondition("COMMAND-3nJ4t", "User has no password");
  if (!attempt.matches)
    return failure(
      UserEvent.passwordCheckFailed,
      s.failedPasswordAttempts,
      attempt.maxAttempts,
      invalid("COMMAND-3M0fs", "Password is invalid"),
    );
  const succeeded: NewEvent = { type: UserEvent.passwordCheckSucceeded, payload: null };
  if (!attempt.rehashed) return emit(succeeded);
  return emit(succeeded, { type: UserEvent.passwordHashUpdated, payload: { encodedHash: attempt.rehashed } });
}

// ---- OTP SMS at sign-in -----------------------------------------------------------------------

// What a session's challenge holds of the code it sent.
export interface OtpChallenge {
  readonly hash: string;
  readonly expiresAt: string;
  readonly otpSmsSince: number;
}

export function assertCanChallengeOtpSms(s: UserState): void {
  if (!userExists(s)) throw precondition("COMMAND-3n77z", "User could not be found");
  if (s.state === "locked") throw lockedError();
  if (s.state === "inactive") throw precondition("SESSION-Gj4ko", "User is not active");
  if (!s.otpSms || !s.phone) throw precondition("COMMAND-BJ2g3", "OTP SMS is not set up for this user");
}

export function checkOtpSms(
  s: UserState,
  challenge: OtpChallenge | null,
  attempt: { readonly matches: (hash: string) => boolean; readonly now: Date; readonly maxAttempts: number },
): Decision {
  if (!userExists(s)) throw precondition("COMMAND-3n77z", "User could not be found");
  if (s.state === "locked") throw lockedError();
  if (s.state === "inactive") throw precondition("SESSION-Gj4ko", "User is not active");
  if (!s.otpSms) throw precondition("COMMAND-d2r52", "OTP SMS is not set up for this user");
  // A code from before the factor was last removed belongs to a factor that no longer exists.
  if (!challenge || challenge.otpSmsSince !== s.otpSmsSince)
    throw precondition("COMMAND-S34gh", "No OTP code is pending: request a new one");
  const fail = (error: Error) =>
    failure(UserEvent.otpSmsCheckFailed, s.failedOtpAttempts, attempt.maxAttempts, error);
  if (new Date(challenge.expiresAt) <= attempt.now)
    return fail(precondition("CODE-QvUQ4P", "OTP code has expired"));
  if (!attempt.matches(challenge.hash)) return fail(invalid("CODE-woT0xc", "OTP code is invalid"));
  return emit({ type: UserEvent.otpSmsCheckSucceeded, payload: null });
}

// ---- User state -------------------------------------------------------------------------------

export function lockUser(s: UserState): Decision {
  if (!userExists(s)) throw notFound("COMMAND-5M9fs", "User could not be found");
  if (s.state !== "active") throw precondition("COMMAND-3NN8v", "User must be active to be locked");
  return emit({ type: UserEvent.locked, payload: null });
}

export function unlockUser(s: UserState): Decision {
  if (!userExists(s)) throw notFound("COMMAND-M0dos", "User could not be found");
  if (s.state !== "locked") throw precondition("COMMAND-4M0ds", "User is not locked");
  return emit({ type: UserEvent.unlocked, payload: null });
}

export function deactivateUser(s: UserState): Decision {
  if (!userExists(s)) throw notFound("COMMAND-3M9ds", "User could not be found");
  if (s.state === "inactive") throw precondition("COMMAND-5M0sf", "User is already inactive");
  return emit({ type: UserEvent.deactivated, payload: null });
}

export function reactivateUser(s: UserState): Decision {
  if (!userExists(s)) throw notFound("COMMAND-4M0sd", "User could not be found");
  if (s.state !== "inactive") throw precondition("COMMAND-6M0sf", "User is not inactive");
  return emit({ type: UserEvent.reactivated, payload: null });
}
