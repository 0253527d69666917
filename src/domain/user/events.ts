// Event type names mirror ZITADEL's, so an operator who reads ZITADEL's audit log reads ours.
export const UserEvent = {
  humanAdded: "user.human.added",
  machineAdded: "user.machine.added",
  removed: "user.removed",
  phoneChanged: "user.human.phone.changed",
  phoneCodeAdded: "user.human.phone.code.added",
  phoneVerified: "user.human.phone.verified",
  phoneVerificationFailed: "user.human.phone.verification.failed",
  phoneRemoved: "user.human.phone.removed",
  otpSmsAdded: "user.human.mfa.otp.sms.added",
  otpSmsRemoved: "user.human.mfa.otp.sms.removed",
  patAdded: "user.personal.access.token.added",
  patRemoved: "user.personal.access.token.removed",
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
