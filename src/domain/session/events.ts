// Event type names mirror ZITADEL's session aggregate.
export const SessionEvent = {
  added: "session.added",
  userChecked: "session.user.checked",
  passwordChecked: "session.password.checked",
  otpSmsChallenged: "session.otp.sms.challenged",
  otpSmsChecked: "session.otp.sms.checked",
  tokenSet: "session.token.set",
  metadataSet: "session.metadata.set",
  lifetimeSet: "session.lifetime.set",
  terminated: "session.terminated",
} as const;

export interface UserAgent {
  readonly fingerprintId?: string | undefined;
  readonly ip?: string | undefined;
  readonly description?: string | undefined;
  readonly header?: Readonly<Record<string, readonly string[]>> | undefined;
}

export interface SessionAdded {
  readonly userAgent: UserAgent | null;
}

export interface UserChecked {
  readonly userId: string;
  readonly userResourceOwner: string;
  readonly checkedAt: string;
}

export interface FactorChecked {
  readonly checkedAt: string;
}

// The code is never stored: only its salted hash, and which enrolment of OTP SMS it belongs to.
export interface OtpSmsChallenged {
  readonly codeHash: string;
  readonly expiresAt: string;
  readonly codeReturned: boolean;
  readonly otpSmsSince: number;
}

// The token itself is never stored: only its hash.
export interface TokenSet {
  readonly tokenHash: string;
}

// Values are base64, as bytes travel in JSON.
export interface MetadataSet {
  readonly metadata: Readonly<Record<string, string>>;
}

export interface LifetimeSet {
  readonly lifetimeMs: number;
}
