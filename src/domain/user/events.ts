// Event type names mirror ZITADEL's, so an operator who reads ZITADEL's audit log reads ours.
export const UserEvent = {
  humanAdded: "user.human.added",
  machineAdded: "user.machine.added",
  removed: "user.removed",
  phoneChanged: "user.human.phone.changed",
  phoneCodeAdded: "user.human.phone.code.added",
  // ZITADEL's name for "the verification code left by SMS".
  phoneCodeSent: "user.human.phone.code.sent",
  phoneVerified: "user.human.phone.verified",
  phoneVerificationFailed: "user.human.phone.verification.failed",
  phoneRemoved: "user.human.phone.removed",
  otpSmsAdded: "user.human.mfa.otp.sms.added",
  otpSmsRemoved: "user.human.mfa.otp.sms.removed",
  // Latchkey's: any other SMS that left (a security notice), and an SMS that did not.
  smsSent: "user.human.sms.sent",
  smsFailed: "user.human.sms.failed",
  patAdded: "user.personal.access.token.added",
  patRemoved: "user.personal.access.token.removed",
  passwordChanged: "user.human.password.changed",
  passwordHashUpdated: "user.human.password.hash.updated",
  passwordCodeAdded: "user.human.password.code.added",
  passwordCheckSucceeded: "user.human.password.check.succeeded",
  passwordCheckFailed: "user.human.password.check.failed",
  otpSmsCheckSucceeded: "user.human.mfa.otp.sms.check.succeeded",
  otpSmsCheckFailed: "user.human.mfa.otp.sms.check.failed",
  locked: "user.locked",
  unlocked: "user.unlocked",
  deactivated: "user.deactivated",
  reactivated: "user.reactivated",
} as const;

export interface Profile {
  readonly givenName: string;
  readonly familyName: string;
  readonly nickName: string;
  readonly displayName: string;
  readonly preferredLanguage: string;
  readonly gender: number;
}

export interface HumanAdded {
  readonly username: string;
  readonly profile: Profile;
  readonly email: string;
  readonly emailVerified: boolean;
}

export interface MachineAdded {
  readonly username: string;
  readonly name: string;
  readonly description: string;
}

export interface PhoneChanged {
  readonly phone: string;
}

// The code itself is never stored: only its salted hash.
export interface PhoneCodeAdded {
  readonly codeHash: string;
  readonly expiresAt: string;
  readonly codeReturned: boolean;
}

export interface PatAdded {
  readonly tokenId: string;
  readonly tokenHash: string;
  readonly expiresAt: string | null;
}

export interface PatRemoved {
  readonly tokenId: string;
}

// What an SMS is for; it picks the text, whether it counts towards the sending limits, and
// the event that records its delivery.
export type SmsType = "phone_verification" | "otp" | "security_notice";

export interface SmsSent {
  readonly messageId: string;
  readonly messageType: SmsType;
  readonly provider: string;
  readonly providerMessageId: string | null;
}

// rejected: the provider refused it for good; gave_up: transient failures until the attempts
// ran out; expired: the code it carried expired before it could leave; unknown: an attempt
// was cut off (a crash) after it may have reached the provider, so it is not repeated;
// unreadable: the stored text cannot be decrypted with the configured key.
export type SmsFailure = "rejected" | "gave_up" | "expired" | "unknown" | "unreadable";

export interface SmsFailed {
  readonly messageId: string;
  readonly messageType: SmsType;
  readonly reason: SmsFailure;
  // A short, secret-free description such as "HTTP 400".
  readonly detail: string;
}
// Only the encoded hash (argon2id or an imported bcrypt hash), never the password.
export interface PasswordChanged {
  readonly encodedHash: string;
  readonly changeRequired: boolean;
}

// A password reset code, stored like phone codes: only its salted hash.
export type PasswordCodeAdded = PhoneCodeAdded;
