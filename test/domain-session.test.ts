import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DomainError } from "../src/domain/errors.ts";
import type { NewEvent } from "../src/domain/events.ts";
import { checkImportedHash, checkPasswordComplexity } from "../src/domain/policy.ts";
import { authenticatesUser, type SignInStep, signInStep } from "../src/domain/session/decide.ts";
import { SessionEvent } from "../src/domain/session/events.ts";
import * as decide from "../src/domain/user/decide.ts";
import { UserEvent } from "../src/domain/user/events.ts";
import { given, givenSession, userFrom } from "./support/decider.ts";

const now = new Date("2026-01-01T00:00:00.000Z");
const later = (ms: number) => new Date(now.getTime() + ms);
const ev = (type: string, payload: NewEvent["payload"] = null): NewEvent => ({ type, payload });

const human = ev(UserEvent.humanAdded, {
  username: "ada",
  profile: {
    givenName: "Ada",
    familyName: "L",
    nickName: "",
    displayName: "Ada",
    preferredLanguage: "",
    gender: 0,
  },
  email: "ada@example.com",
  emailVerified: true,
});
const withPassword = ev(UserEvent.passwordChanged, { encodedHash: "$argon2id$x", changeRequired: false });
const phone = ev(UserEvent.phoneChanged, { phone: "+41791234567" });
const phoneVerified = ev(UserEvent.phoneVerified);
const otpAdded = ev(UserEvent.otpSmsAdded);
const otpRemoved = ev(UserEvent.otpSmsRemoved);
const locked = ev(UserEvent.locked);
const pwFailed = ev(UserEvent.passwordCheckFailed);
const pwOk = ev(UserEvent.passwordCheckSucceeded);
const otpFailed = ev(UserEvent.otpSmsCheckFailed);
const otpOk = ev(UserEvent.otpSmsCheckSucceeded);

// Ada with a password and OTP SMS (added as her 5th event).
const ada = [human, withPassword, phone, phoneVerified, otpAdded];
const lockout = { maxPasswordAttempts: 3, maxOtpAttempts: 3 };
const token = ev(SessionEvent.tokenSet, { tokenHash: "t2" });

const sessionAdded = ev(SessionEvent.added, { userAgent: null });
const userChecked = ev(SessionEvent.userChecked, {
  userId: "u1",
  userResourceOwner: "org1",
  checkedAt: now.toISOString(),
});
const challenged = (otpSmsSince = 5, expiresAt = later(300_000)) =>
  ev(SessionEvent.otpSmsChallenged, {
    codeHash: "salt:code",
    expiresAt: expiresAt.toISOString(),
    codeReturned: true,
    otpSmsSince,
  });
const checkedAt = (type: string) => ev(type, { checkedAt: now.toISOString() });

const step = (history: NewEvent[], s: Partial<SignInStep>) => (session: Parameters<typeof signInStep>[0]) =>
  signInStep(session, { now, user: userFrom(...history), tokenHash: "t2", lockout, ...s });

describe("CreateSession and SetSession decisions", () => {
  it("starts a session with a user check and a token", () =>
    givenSession()
      .when(step(ada, { start: { userAgent: null }, checkUser: userFrom(...ada) }))
      .thenEmits([sessionAdded, userChecked, token]));

  it("refuses a user check on a locked user", () =>
    givenSession()
      .when(step([...ada, locked], { start: { userAgent: null }, checkUser: userFrom(...ada, locked) }))
      .rejects("failed_precondition", "SESSION-Gj4ko"));

  it("does not let a session change its user", () => {
    const other = { ...userFrom(...ada), id: "u2" };
    givenSession(sessionAdded, userChecked)
      .when(step(ada, { checkUser: other }))
      .rejects("invalid_argument", "LK-SESSION-USER");
  });

  it("needs a user before a password", () =>
    givenSession(sessionAdded)
      .when((s) => signInStep(s, { now, user: null, password: { matches: true }, tokenHash: "t2", lockout }))
      .rejects("failed_precondition", "COMMAND-Sfw3f"));

  it("records a right password on session and user", () =>
    givenSession(sessionAdded, userChecked)
      .when(step(ada, { password: { matches: true } }))
      .thenEmits([checkedAt(SessionEvent.passwordChecked), token], [pwOk]));

  it("moves a right password to a fresh hash when asked to", () =>
    givenSession(sessionAdded, userChecked)
      .when(step(ada, { password: { matches: true, rehashed: "$argon2id$fresh" } }))
      .thenEmits(
        [checkedAt(SessionEvent.passwordChecked), token],
        [pwOk, ev(UserEvent.passwordHashUpdated, { encodedHash: "$argon2id$fresh" })],
      ));

  it("records a wrong password on the user only, and answers InvalidArgument", () =>
    givenSession(sessionAdded, userChecked)
      .when(step(ada, { password: { matches: false } }))
      .thenRecordsFailure([pwFailed], "invalid_argument", "COMMAND-3M0fs"));

  it("locks the user with the failure that reaches the limit", () =>
    givenSession(sessionAdded, userChecked)
      .when(step([...ada, pwFailed, pwFailed], { password: { matches: false } }))
      .thenRecordsFailure([pwFailed, locked], "invalid_argument", "COMMAND-3M0fs"));

  it("starts counting again after a success", () =>
    givenSession(sessionAdded, userChecked)
      .when(step([...ada, pwFailed, pwFailed, pwOk, pwFailed], { password: { matches: false } }))
      .thenRecordsFailure([pwFailed], "invalid_argument", "COMMAND-3M0fs"));

  it("refuses a password check on a locked user even with the right password", () =>
    givenSession(sessionAdded, userChecked)
      .when(step([...ada, locked], { password: { matches: true } }))
      .rejects("failed_precondition", "COMMAND-JLK35"));

  it("refuses a password check on a user without one", () =>
    givenSession(sessionAdded, userChecked)
      .when(step([human], { password: { matches: true } }))
      .rejects("failed_precondition", "COMMAND-3nJ4t"));

  it("challenges OTP SMS, remembering which enrolment the code belongs to", () =>
    givenSession(sessionAdded, userChecked)
      .when(
        step(ada, {
          otpSmsChallenge: { hash: "salt:code", expiresAt: later(300_000), returned: true },
        }),
      )
      .thenEmits([challenged(5), token]));

  it("refuses an OTP SMS challenge for a user without the factor", () =>
    givenSession(sessionAdded, userChecked)
      .when(
        step([...ada, otpRemoved], {
          otpSmsChallenge: { hash: "salt:code", expiresAt: later(300_000), returned: true },
        }),
      )
      .rejects("failed_precondition", "COMMAND-BJ2g3"));

  it("checks the OTP code of the challenge once", () =>
    givenSession(sessionAdded, userChecked, challenged())
      .when(step(ada, { otpSms: { matches: (h) => h === "salt:code" } }))
      .thenEmits([checkedAt(SessionEvent.otpSmsChecked), token], [otpOk]));

  it("refuses a code that was already used", () =>
    givenSession(sessionAdded, userChecked, challenged(), checkedAt(SessionEvent.otpSmsChecked))
      .when(step(ada, { otpSms: { matches: () => true } }))
      .rejects("failed_precondition", "COMMAND-S34gh"));

  it("records a wrong code and locks at the limit", () =>
    givenSession(sessionAdded, userChecked, challenged())
      .when(step([...ada, otpFailed, otpFailed], { otpSms: { matches: () => false } }))
      .thenRecordsFailure([otpFailed, locked], "invalid_argument", "CODE-woT0xc"));

  it("records an expired code as a failure", () =>
    givenSession(sessionAdded, userChecked, challenged(5, now))
      .when(step(ada, { otpSms: { matches: () => true } }))
      .thenRecordsFailure([otpFailed], "failed_precondition", "CODE-QvUQ4P"));

  it("refuses a code once OTP SMS is removed", () =>
    givenSession(sessionAdded, userChecked, challenged())
      .when(step([...ada, otpRemoved], { otpSms: { matches: () => true } }))
      .rejects("failed_precondition", "COMMAND-d2r52"));

  it("voids a code issued before OTP SMS was removed and added again", () =>
    givenSession(sessionAdded, userChecked, challenged(5))
      .when(step([...ada, otpRemoved, otpAdded], { otpSms: { matches: () => true } }))
      .rejects("failed_precondition", "COMMAND-S34gh"));

  it("refuses changes to a terminated session", () =>
    givenSession(sessionAdded, userChecked, ev(SessionEvent.terminated))
      .when(step(ada, { password: { matches: true } }))
      .rejects("failed_precondition", "COMMAND-Hewfq"));

  it("refuses changes to an expired session", () =>
    givenSession(sessionAdded, userChecked, ev(SessionEvent.lifetimeSet, { lifetimeMs: 1000 }))
      .when((s) => signInStep(s, { now: later(1000), user: userFrom(...ada), tokenHash: "t2", lockout }))
      .rejects("failed_precondition", "COMMAND-Hkl3d"));

  it("refuses a negative lifetime and writes nothing for an empty change", () => {
    givenSession(sessionAdded)
      .when(step(ada, { lifetimeMs: -1 }))
      .rejects("invalid_argument", "COMMAND-asEG4");
    givenSession(sessionAdded).when(step(ada, {})).thenEmits([]);
  });

  it("sets and removes metadata", () =>
    givenSession(sessionAdded, ev(SessionEvent.metadataSet, { metadata: { a: "YQ==", b: "Yg==" } }))
      .when(step(ada, { metadata: { a: "", c: "Yw==" } }))
      .thenEmits([ev(SessionEvent.metadataSet, { metadata: { b: "Yg==", c: "Yw==" } }), token]));
});

describe("a session as its user's bearer", () => {
  const session = (...extra: NewEvent[]) => givenSession(sessionAdded, userChecked, ...extra).state;
  it("needs a verified factor", () => assert.equal(authenticatesUser(session(), userFrom(...ada)), false));
  it("needs every second factor the user has", () => {
    const pw = session(checkedAt(SessionEvent.passwordChecked));
    assert.equal(authenticatesUser(pw, userFrom(...ada)), false);
    assert.equal(authenticatesUser(pw, userFrom(human, withPassword)), true);
    const both = session(checkedAt(SessionEvent.passwordChecked), checkedAt(SessionEvent.otpSmsChecked));
    assert.equal(authenticatesUser(both, userFrom(...ada)), true);
  });
  it("stops when the user is locked", () => {
    const both = session(checkedAt(SessionEvent.passwordChecked), checkedAt(SessionEvent.otpSmsChecked));
    assert.equal(authenticatesUser(both, userFrom(...ada, locked)), false);
  });
});

describe("password and user state decisions", () => {
  const input = { encodedHash: "$argon2id$new", changeRequired: false };
  const changed = ev(UserEvent.passwordChanged, { ...input });
  const codeAdded = ev(UserEvent.passwordCodeAdded, {
    codeHash: "salt:code",
    expiresAt: later(60_000).toISOString(),
    codeReturned: true,
  });
  it("sets a password for a human", () =>
    given(human)
      .when((s) => decide.setPassword(s, input))
      .thenEmits(changed));
  it("sets a password with a pending reset code", () =>
    given(human, codeAdded)
      .when((s) => decide.setPasswordWithCode(s, { matches: (h) => h === "salt:code", now }, input))
      .thenEmits(changed));
  it("refuses a wrong, an expired and a used reset code", () => {
    given(human, codeAdded)
      .when((s) => decide.setPasswordWithCode(s, { matches: () => false, now }, input))
      .rejects("invalid_argument", "CODE-woT0xc");
    given(human, codeAdded)
      .when((s) => decide.setPasswordWithCode(s, { matches: () => true, now: later(60_000) }, input))
      .rejects("failed_precondition", "CODE-QvUQ4P");
    given(human, codeAdded, changed)
      .when((s) => decide.setPasswordWithCode(s, { matches: () => true, now }, input))
      .rejects("failed_precondition", "COMMAND-2M9fs");
  });
  it("locks and unlocks", () => {
    given(human).when(decide.lockUser).thenEmits(locked);
    given(human, locked).when(decide.lockUser).rejects("failed_precondition", "COMMAND-3NN8v");
    given(human, locked).when(decide.unlockUser).thenEmits(ev(UserEvent.unlocked));
    given(human).when(decide.unlockUser).rejects("failed_precondition", "COMMAND-4M0ds");
  });
  it("unlocking resets the failure counts", () => {
    const s = given(human, pwFailed, otpFailed, locked, ev(UserEvent.unlocked)).state;
    assert.equal(s.failedPasswordAttempts, 0);
    assert.equal(s.failedOtpAttempts, 0);
    assert.equal(s.state, "active");
  });
  it("deactivates and reactivates", () => {
    given(human).when(decide.deactivateUser).thenEmits(ev(UserEvent.deactivated));
    given(human, ev(UserEvent.deactivated))
      .when(decide.deactivateUser)
      .rejects("failed_precondition", "COMMAND-5M0sf");
    given(human, ev(UserEvent.deactivated)).when(decide.reactivateUser).thenEmits(ev(UserEvent.reactivated));
    given(human).when(decide.reactivateUser).rejects("failed_precondition", "COMMAND-6M0sf");
  });
});

describe("password policy", () => {
  const policy = {
    minLength: 8,
    hasUppercase: false,
    hasLowercase: false,
    hasNumber: false,
    hasSymbol: false,
  };
  const refuses = (p: typeof policy, pw: string, id: string) =>
    assert.throws(
      () => checkPasswordComplexity(p, pw),
      (e: unknown) => e instanceof DomainError && e.id === id,
    );
  it("counts characters, not bytes", () => {
    checkPasswordComplexity(policy, "東京東京東京東京");
    refuses(policy, "東京東京東京東", "DOMAIN-HuJf6");
  });
  it("applies the composition rules an organization switches on", () => {
    const strict = { ...policy, hasUppercase: true, hasLowercase: true, hasNumber: true, hasSymbol: true };
    refuses(strict, "ALLUPPER1!", "DOMAIN-co3Xw");
    refuses(strict, "alllower1!", "DOMAIN-VoaRj");
    refuses(strict, "NoNumber!!", "DOMAIN-ZBv4H");
    refuses(strict, "NoSymbol11", "DOMAIN-ZDLwA");
    checkPasswordComplexity(strict, "Göod-pass1");
  });
  it("accepts argon2id and bcrypt hashes for import, nothing else", () => {
    checkImportedHash("$2b$04$GBLdJFW303WL6hGa3FhkLezMniG6dKXx0WP/p5039yLUSALA28LS2");
    checkImportedHash(
      "$argon2id$v=19$m=19456,t=2,p=1$RnWsQbiTslrAuwrc5GxxhQ$8tSEUZ7DpYkxDODGgb4DAl2oGUFxyj0i31i0uSFTJWg",
    );
    assert.throws(() => checkImportedHash("$argon2i$v=19$m=19456,t=2,p=1$abc$def"));
    assert.throws(() => checkImportedHash("plaintext"));
  });
});
