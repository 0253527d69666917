import type { Clock, SmsSender, Store } from "./ports.ts";

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface AppSettings {
  // Region used to read phone numbers written without a country code.
  readonly defaultRegion: string;
  // How long a phone verification code stays valid.
  readonly codeTtlMs: number;
  // How often a command re-decides after losing a race before it gives up.
  readonly maxConflictRetries: number;
}

export interface AppDeps {
  readonly store: Store;
  readonly clock: Clock;
  readonly sms: SmsSender;
  readonly log: Logger;
  readonly settings: AppSettings;
}
