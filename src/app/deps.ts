import type { OrgPolicies } from "../domain/policy.ts";
import type { Clock, PasswordHasher, Store } from "./ports.ts";

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

// What the application reports about its writes; the adapter (Prometheus) counts them.
export interface AppMetrics {
  // An append stored this many events.
  appended(events: number): void;
  // An append lost a race with another writer; the command decides again on fresh state. `by`
  // says whose append it was: a caller's, or background work no caller waits for.
  conflict(by: "caller" | "background"): void;
  // A command lost the race too often and answered Aborted.
  gaveUp(): void;
}

export const noMetrics: AppMetrics = { appended() {}, conflict() {}, gaveUp() {} };

export interface AppSettings {
  // Region used to read phone numbers written without a country code.
  readonly defaultRegion: string;
  // How long a phone verification code stays valid.
  readonly codeTtlMs: number;
  // How often a command re-decides after losing a race before it gives up.
  readonly maxConflictRetries: number;
  readonly sms: SmsSettings;
  // How long an OTP SMS code sent at sign-in stays valid.
  readonly otpSmsTtlMs: number;
  // How long a password reset code stays valid.
  readonly passwordResetTtlMs: number;
  // The password and lockout policies every organization starts with.
  readonly defaultPolicies: OrgPolicies;
  // Removing a second factor ends the user's other sessions (ASVS 5.0 7.4.3).
  readonly endSessionsOnFactorRemoval: boolean;
}

export interface SmsSettings {
  // Code messages per hour per user, per phone number and per number prefix; 0 turns one off.
  readonly perUserPerHour: number;
  readonly perNumberPerHour: number;
  readonly perPrefixPerHour: number;
  // How many leading digits (after the +) make a prefix.
  readonly prefixDigits: number;
  // Whether removing OTP SMS sends a notice to the number it used.
  readonly removalNotice: boolean;
  // The AES-256 key outbox texts are sealed with; null stores them unencrypted.
  readonly outboxKey: Buffer | null;
}

export interface AppDeps {
  readonly store: Store;
  readonly clock: Clock;
  // Draws the id of a user the caller did not name.
  readonly newId: () => string;
  // Tells this node's outbox worker that a message was just stored (other nodes poll).
  readonly outboxReady: () => void;
  readonly passwords: PasswordHasher;
  readonly log: Logger;
  readonly metrics: AppMetrics;
  readonly settings: AppSettings;
}
