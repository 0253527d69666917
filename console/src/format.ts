// How ZITADEL's names and numbers read to a person.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function when(value: Date | string): string {
  const d = typeof value === "string" ? new Date(value) : value;
  return Number.isNaN(d.getTime()) ? "unknown time" : dateTime.format(d);
}

// ZITADEL's AuthenticationMethodType.
export const authMethodNames: Readonly<Record<number, string>> = {
  1: "Password",
  2: "Passkey",
  3: "Identity provider",
  4: "Authenticator app (TOTP)",
  5: "Security key (U2F)",
  6: "OTP SMS",
  7: "OTP email",
};

export const OTP_SMS = 6;

// ZITADEL's UserState.
export const userStateNames: Readonly<Record<number, string>> = {
  1: "Active",
  2: "Inactive",
  3: "Deleted",
  4: "Locked",
  5: "Initial",
};
export const USER_STATE_ACTIVE = 1;

// Event types keep ZITADEL's names (shown too, for whoever reads ZITADEL's audit log).
const eventNames: Readonly<Record<string, string>> = {
  "user.human.added": "User created",
  "user.machine.added": "Machine user created",
  "user.removed": "User deleted",
  "user.human.phone.changed": "Phone number changed",
  "user.human.phone.code.added": "Phone verification code issued",
  "user.human.phone.code.sent": "Phone verification code sent by SMS",
  "user.human.phone.verified": "Phone number verified",
  "user.human.phone.verification.failed": "Wrong phone verification code",
  "user.human.phone.removed": "Phone number removed",
  "user.human.mfa.otp.sms.added": "OTP SMS added",
  "user.human.mfa.otp.sms.removed": "OTP SMS removed",
  "user.human.sms.sent": "SMS notice sent",
  "user.human.sms.failed": "SMS could not be sent",
  "user.personal.access.token.added": "Personal access token added",
  "user.personal.access.token.removed": "Personal access token removed",
};

export const eventName = (type: string) => eventNames[type] ?? type;

// Who wrote an event: a user by username, or Latchkey itself (ZITADEL's NOTIFICATION creator
// records what became of an SMS).
export function authorName(creator: { readonly userId: string; readonly username: string | null }): string {
  if (creator.username) return creator.username;
  if (creator.userId === "NOTIFICATION") return "Latchkey (SMS delivery)";
  return creator.userId ? `user ${creator.userId}` : "unknown";
}
