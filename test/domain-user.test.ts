import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as decide from "../src/domain/user/decide.ts";
import { UserEvent } from "../src/domain/user/events.ts";
import { emptyUser, foldUser, maxCodeAttempts } from "../src/domain/user/state.ts";
import { given, recorded } from "./support/decider.ts";

const human = {
  type: UserEvent.humanAdded,
  payload: {
    username: "ada",
    profile: {
      givenName: "Ada",
      familyName: "Lovelace",
      nickName: "",
      displayName: "Ada",
      preferredLanguage: "",
      gender: 0,
    },
    email: "ada@example.com",
    emailVerified: true,
  },
};
const machine = { type: UserEvent.machineAdded, payload: { username: "bot", name: "Bot", description: "" } };
const phoneChanged = (phone = "+41791234567") => ({ type: UserEvent.phoneChanged, payload: { phone } });
const phoneVerified = { type: UserEvent.phoneVerified, payload: null };
const otpAdded = { type: UserEvent.otpSmsAdded, payload: null };
const otpRemoved = { type: UserEvent.otpSmsRemoved, payload: null };
const userRemoved = { type: UserEvent.removed, payload: null };
const phoneRemoved = { type: UserEvent.phoneRemoved, payload: null };
const failed = { type: UserEvent.phoneVerificationFailed, payload: null };
const now = new Date("2026-01-01T00:00:00Z");
const code = { hash: "salt:hash", expiresAt: new Date("2026-01-01T00:10:00Z"), returned: false };
const codeAdded = {
  type: UserEvent.phoneCodeAdded,
  payload: { codeHash: "salt:hash", expiresAt: "2026-01-01T00:10:00.000Z", codeReturned: false },
};

describe("AddOTPSMS decision", () => {
  it("adds the factor to a user with a verified phone", () =>
    given(human, phoneChanged(), phoneVerified).when(decide.addOtpSms).thenEmits(otpAdded));
  it("refuses a second add with AlreadyExists COMMAND-Ad3g2", () =>
    given(human, phoneChanged(), phoneVerified, otpAdded)
      .when(decide.addOtpSms)
      .rejects("already_exists", "COMMAND-Ad3g2"));
  it("refuses without a phone with FailedPrecondition COMMAND-Q54j2", () =>
    given(human).when(decide.addOtpSms).rejects("failed_precondition", "COMMAND-Q54j2"));
  it("refuses an unverified phone with FailedPrecondition COMMAND-Q54j2", () =>
    given(human, phoneChanged(), codeAdded)
      .when(decide.addOtpSms)
      .rejects("failed_precondition", "COMMAND-Q54j2"));
  it("refuses after a phone change un-verified the number", () =>
    given(human, phoneChanged(), phoneVerified, phoneChanged("+41797654321"))
      .when(decide.addOtpSms)
      .rejects("failed_precondition", "COMMAND-Q54j2"));
  it("treats a deleted user as missing", () =>
    given(human, phoneChanged(), phoneVerified, userRemoved)
      .when(decide.addOtpSms)
      .rejects("not_found", "COMMAND-4g3xq"));
  it("adds again after a removal", () =>
    given(human, phoneChanged(), phoneVerified, otpAdded, otpRemoved)
      .when(decide.addOtpSms)
      .thenEmits(otpAdded));
});

describe("RemoveOTPSMS decision", () => {
  it("removes an added factor", () =>
    given(human, phoneChanged(), phoneVerified, otpAdded).when(decide.removeOtpSms).thenEmits(otpRemoved));
  it("answers NotFound COMMAND-Sr3h3 when nothing is there", () =>
    given(human, phoneChanged(), phoneVerified)
      .when(decide.removeOtpSms)
      .rejects("not_found", "COMMAND-Sr3h3"));
  it("answers NotFound COMMAND-Sr3h3 after a removal", () =>
    given(human, phoneChanged(), phoneVerified, otpAdded, otpRemoved)
      .when(decide.removeOtpSms)
      .rejects("not_found", "COMMAND-Sr3h3"));
  it("treats the factor as gone once the phone was removed", () =>
    given(human, phoneChanged(), phoneVerified, otpAdded, phoneRemoved)
      .when(decide.removeOtpSms)
      .rejects("not_found", "COMMAND-Sr3h3"));
  it("answers NotFound for a user that never existed", () =>
    given().when(decide.removeOtpSms).rejects("not_found", "COMMAND-4g3xq"));
});

describe("phone decisions", () => {
  it("SetPhone to another number un-verifies it and ends OTP SMS in the same write", () =>
    given(human, phoneChanged(), phoneVerified, otpAdded)
      .when((s) => decide.setPhone(s, { phone: "+41797654321", verified: false, code }))
      .thenEmits(otpRemoved, phoneChanged("+41797654321"), codeAdded));
  it("SetPhone without OTP SMS writes no removal", () =>
    given(human)
      .when((s) => decide.setPhone(s, { phone: "+41791234567", verified: true }))
      .thenEmits(phoneChanged(), phoneVerified));
  it("SetPhone to the same number answers FailedPrecondition COMMAND-Uch5e", () =>
    given(human, phoneChanged())
      .when((s) => decide.setPhone(s, { phone: "+41791234567", verified: true }))
      .rejects("failed_precondition", "COMMAND-Uch5e"));
  it("SetPhone on a machine user is refused", () =>
    given(machine)
      .when((s) => decide.setPhone(s, { phone: "+41791234567", verified: true }))
      .rejects("failed_precondition", "LK-HUMAN"));
  it("RemovePhone with OTP SMS on writes both removals", () =>
    given(human, phoneChanged(), phoneVerified, otpAdded)
      .when(decide.removePhone)
      .thenEmits(otpRemoved, phoneRemoved));
  it("RemovePhone without a phone answers NotFound", () =>
    given(human).when(decide.removePhone).rejects("not_found", "COMMAND-ieJ2e"));
  it("VerifyPhone with the right code verifies", () =>
    given(human, phoneChanged(), codeAdded)
      .when((s) => decide.verifyPhone(s, { matches: (h) => h === "salt:hash", now }))
      .thenEmits(phoneVerified));
  it("VerifyPhone with a wrong code records the failure and answers InvalidArgument", () =>
    given(human, phoneChanged(), codeAdded)
      .when((s) => decide.verifyPhone(s, { matches: () => false, now }))
      .thenWithError([failed], "invalid_argument", "COMMAND-eis9R"));
  it("VerifyPhone after expiry answers FailedPrecondition even with the right code", () =>
    given(human, phoneChanged(), codeAdded)
      .when((s) => decide.verifyPhone(s, { matches: () => true, now: new Date("2026-01-01T00:10:00Z") }))
      .thenWithError([failed], "failed_precondition", "CODE-QvUQ4P"));
  it(`voids the code after ${maxCodeAttempts} wrong attempts`, () =>
    given(human, phoneChanged(), codeAdded, ...Array(maxCodeAttempts).fill(failed))
      .when((s) => decide.verifyPhone(s, { matches: () => true, now }))
      .rejects("failed_precondition", "LK-NOCODE"));
  it("a used code cannot be used again", () =>
    given(human, phoneChanged(), codeAdded, phoneVerified)
      .when((s) => decide.verifyPhone(s, { matches: () => true, now }))
      .rejects("failed_precondition", "COMMAND-2M9sf"));
  it("ResendPhoneCode needs a pending code", () =>
    given(human, phoneChanged(), phoneVerified)
      .when((s) => decide.resendPhoneCode(s, code))
      .rejects("failed_precondition", "PHONE-5xrra88eq8"));
});

describe("user and token decisions", () => {
  it("a user id cannot be added twice, even after deletion", () =>
    given(human, userRemoved)
      .when((s) => decide.addMachine(s, { username: "x", name: "x", description: "" }))
      .rejects("already_exists", "COMMAND-k2unb"));
  it("tokens are for machine users only", () =>
    given(human)
      .when((s) => decide.addPersonalAccessToken(s, { tokenId: "t", tokenHash: "h", expiresAt: null, now }))
      .rejects("failed_precondition", "COMMAND-Dv2sf"));
  it("a token cannot expire in the past", () =>
    given(machine)
      .when((s) => decide.addPersonalAccessToken(s, { tokenId: "t", tokenHash: "h", expiresAt: now, now }))
      .rejects("invalid_argument", "COMMAND-dv3t5"));
  it("removing an unknown token answers NotFound", () =>
    given(machine)
      .when((s) => decide.removePersonalAccessToken(s, "nope"))
      .rejects("not_found", "COMMAND-4m77G"));
  it("folding counts every event into the sequence", () => {
    const s = foldUser(emptyUser("u1"), recorded([human, phoneChanged(), phoneVerified, otpAdded]));
    assert.equal(s.sequence, 4);
    assert.equal(s.otpSms, true);
    assert.equal(s.orgId, "org1");
  });
});

describe("SMS outcome decisions", () => {
  const sent = (messageType: "phone_verification" | "security_notice") => ({
    messageId: "m1",
    messageType,
    provider: "webhook",
    providerMessageId: null,
  });

  it("records a sent verification code under ZITADEL's phone.code.sent", () =>
    given(human, phoneChanged(), codeAdded)
      .when((s) => decide.recordSmsSent(s, sent("phone_verification")))
      .thenEmits({ type: "user.human.phone.code.sent", payload: sent("phone_verification") }));

  it("records any other message as sms.sent", () =>
    given(human, phoneChanged(), phoneVerified, otpAdded, otpRemoved)
      .when((s) => decide.recordSmsSent(s, sent("security_notice")))
      .thenEmits({ type: "user.human.sms.sent", payload: sent("security_notice") }));

  it("records a failure with its reason", () => {
    const failure = {
      messageId: "m1",
      messageType: "phone_verification" as const,
      reason: "rejected" as const,
      detail: "HTTP 400",
    };
    given(human, phoneChanged(), codeAdded)
      .when((s) => decide.recordSmsFailed(s, failure))
      .thenEmits({ type: "user.human.sms.failed", payload: failure });
  });

  it("writes nothing on a user deleted meanwhile", () =>
    given(human, phoneChanged(), codeAdded, userRemoved)
      .when((s) => decide.recordSmsSent(s, sent("phone_verification")))
      .thenEmits());

  it("leaves the state as it was: a sent code is still pending", () => {
    const before = given(human, phoneChanged(), codeAdded).state;
    const after = foldUser(
      before,
      recorded([{ type: UserEvent.phoneCodeSent, payload: sent("phone_verification") }]),
    );
    assert.deepEqual(after.phoneCode, before.phoneCode);
  });
});
