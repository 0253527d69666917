// Every setting Latchkey reads, parsed and checked once at start. Nothing else reads the
// environment: the parsed Config is passed to what needs it.

export type DatabaseConfig =
  | { readonly kind: "sqlite"; readonly path: string }
  | ({ readonly kind: "postgres"; readonly url: string } & Partial<PostgresPoolConfig>);

// loadConfig always sets these; a DatabaseConfig built by hand (tests) may leave them to defaults.
export interface PostgresPoolConfig {
  readonly poolSize: number;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly database: DatabaseConfig;
  readonly adminPatPath: string;
  readonly defaultRegion: string;
  readonly codeTtlSeconds: number;
  readonly logLevel: LogLevel;
  readonly sms: SmsConfig;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

export const defaults = {
  LATCHKEY_PORT: "8080",
  LATCHKEY_HOST: "127.0.0.1",
  LATCHKEY_DATABASE_URL: "sqlite:.latchkey/latchkey.db",
  LATCHKEY_DATABASE_POOL_SIZE: "10",
  LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS: "5000",
  LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS: "3000",
  LATCHKEY_ADMIN_PAT_PATH: ".latchkey/admin.pat",
  LATCHKEY_DEFAULT_REGION: "CH",
  LATCHKEY_CODE_TTL_SECONDS: "600",
  LATCHKEY_LOG_LEVEL: "info",
} as const;

function database(url: string, pool: PostgresPoolConfig): DatabaseConfig {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length).replace(/^\/\//, "");
    if (path === "") throw new ConfigError("LATCHKEY_DATABASE_URL: sqlite: needs a file path");
    return { kind: "sqlite", path };
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://"))
    return { kind: "postgres", url, ...pool };
  throw new ConfigError("LATCHKEY_DATABASE_URL: must start with sqlite: or postgres://");
}

function integer(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max)
    throw new ConfigError(`${name}: "${raw}" is not a whole number from ${min} to ${max}`);
  return n;
}

export function loadConfig(env: Env): Config {
  const get = (name: keyof typeof defaults) => env[name]?.trim() || defaults[name];
  const problems: string[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(err.message);
      return undefined;
    }
  };
  const level = get("LATCHKEY_LOG_LEVEL");
  // Checked whatever the database, so that a typo is caught before the day it matters.
  const setting = (name: keyof typeof defaults, min: number, max: number) =>
    attempt(() => integer(name, get(name), min, max));
  const pool = {
    poolSize: setting("LATCHKEY_DATABASE_POOL_SIZE", 1, 1000),
    statementTimeoutMs: setting("LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS", 100, 600000),
    connectTimeoutMs: setting("LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS", 100, 600000),
  };
  const config = {
    port: attempt(() => integer("LATCHKEY_PORT", get("LATCHKEY_PORT"), 0, 65535)),
    host: get("LATCHKEY_HOST"),
    database: attempt(() => database(get("LATCHKEY_DATABASE_URL"), pool as PostgresPoolConfig)),
    adminPatPath: get("LATCHKEY_ADMIN_PAT_PATH"),
    defaultRegion: attempt(() => {
      const r = get("LATCHKEY_DEFAULT_REGION").toUpperCase();
      if (!/^[A-Z]{2}$/.test(r))
        throw new ConfigError("LATCHKEY_DEFAULT_REGION: must be a two-letter region such as CH");
      return r;
    }),
    codeTtlSeconds: attempt(() =>
      integer("LATCHKEY_CODE_TTL_SECONDS", get("LATCHKEY_CODE_TTL_SECONDS"), 30, 86400),
    ),
    logLevel: attempt(() => {
      if (!["debug", "info", "warn", "error", "silent"].includes(level))
        throw new ConfigError("LATCHKEY_LOG_LEVEL: must be debug, info, warn, error or silent");
      return level as LogLevel;
    }),
    sms: smsConfig(env, attempt),
  };
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  return config as Config;
}

// ---- SMS delivery ------------------------------------------------------------------------------

export type SmsProviderConfig =
  | { readonly kind: "log" }
  | { readonly kind: "webhook"; readonly url: string; readonly secret: string }
  | {
      readonly kind: "twilio";
      readonly accountSid: string;
      readonly authToken: string;
      // A sender number (E.164) or a messaging service SID (MG...).
      readonly from: string;
      readonly baseUrl: string;
    };

export interface SmsConfig {
  readonly provider: SmsProviderConfig;
  // Code messages per hour; 0 turns a limit off.
  readonly limitPerUser: number;
  readonly limitPerNumber: number;
  readonly limitPerPrefix: number;
  readonly limitPrefixDigits: number;
  readonly removalNotice: boolean;
  // 32 bytes; outbox texts (which carry codes) are encrypted with it. Null: stored unencrypted.
  readonly outboxKey: Buffer | null;
  // How long one provider call may take.
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  // The first retry waits about this long; each further one twice as long, with jitter.
  readonly retryBaseMs: number;
}

export const smsDefaults = {
  LATCHKEY_SMS_PROVIDER: "log",
  LATCHKEY_SMS_WEBHOOK_URL: "",
  LATCHKEY_SMS_WEBHOOK_SECRET: "",
  LATCHKEY_SMS_TWILIO_ACCOUNT_SID: "",
  LATCHKEY_SMS_TWILIO_AUTH_TOKEN: "",
  LATCHKEY_SMS_TWILIO_FROM: "",
  LATCHKEY_SMS_TWILIO_BASE_URL: "https://api.twilio.com",
  LATCHKEY_SMS_LIMIT_PER_USER: "5",
  LATCHKEY_SMS_LIMIT_PER_NUMBER: "5",
  LATCHKEY_SMS_LIMIT_PER_PREFIX: "100",
  LATCHKEY_SMS_LIMIT_PREFIX_DIGITS: "6",
  LATCHKEY_SMS_REMOVAL_NOTICE: "true",
  LATCHKEY_SMS_OUTBOX_KEY: "",
  LATCHKEY_SMS_TIMEOUT_MS: "10000",
  LATCHKEY_SMS_MAX_ATTEMPTS: "5",
  LATCHKEY_SMS_RETRY_BASE_MS: "2000",
} as const;

function httpUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name}: "${raw}" is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new ConfigError(`${name}: must be an http:// or https:// URL`);
  return raw;
}

function outboxKey(raw: string, production: boolean): Buffer | null {
  if (raw === "") {
    if (production)
      throw new ConfigError(
        "LATCHKEY_SMS_OUTBOX_KEY: required when NODE_ENV=production (32 bytes as 64 hex digits or base64)",
      );
    return null;
  }
  const key = /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, "hex") : Buffer.from(raw, "base64");
  if (key.length !== 32)
    throw new ConfigError("LATCHKEY_SMS_OUTBOX_KEY: must be 32 bytes, as 64 hex digits or base64");
  return key;
}

function smsProvider(
  get: (name: keyof typeof smsDefaults) => string,
  production: boolean,
): SmsProviderConfig {
  const kind = get("LATCHKEY_SMS_PROVIDER");
  if (kind === "log") {
    if (production)
      throw new ConfigError(
        "LATCHKEY_SMS_PROVIDER: log only writes codes to the log; set webhook or twilio when NODE_ENV=production",
      );
    return { kind };
  }
  const required = (name: keyof typeof smsDefaults) => {
    const v = get(name);
    if (v === "") throw new ConfigError(`${name}: required when LATCHKEY_SMS_PROVIDER=${kind}`);
    return v;
  };
  if (kind === "webhook") {
    const url = httpUrl("LATCHKEY_SMS_WEBHOOK_URL", required("LATCHKEY_SMS_WEBHOOK_URL"));
    const secret = required("LATCHKEY_SMS_WEBHOOK_SECRET");
    if (secret.length < 16)
      throw new ConfigError("LATCHKEY_SMS_WEBHOOK_SECRET: must be at least 16 characters");
    return { kind, url, secret };
  }
  if (kind === "twilio") {
    const accountSid = required("LATCHKEY_SMS_TWILIO_ACCOUNT_SID");
    if (!/^AC\w+$/.test(accountSid))
      throw new ConfigError("LATCHKEY_SMS_TWILIO_ACCOUNT_SID: must be an account SID (AC...)");
    const from = required("LATCHKEY_SMS_TWILIO_FROM");
    if (!/^(\+[1-9]\d{1,14}|MG\w+)$/.test(from))
      throw new ConfigError(
        "LATCHKEY_SMS_TWILIO_FROM: must be a sender number in E.164 (+...) or a messaging service SID (MG...)",
      );
    return {
      kind,
      accountSid,
      authToken: required("LATCHKEY_SMS_TWILIO_AUTH_TOKEN"),
      from,
      baseUrl: httpUrl("LATCHKEY_SMS_TWILIO_BASE_URL", get("LATCHKEY_SMS_TWILIO_BASE_URL")).replace(
        /\/+$/,
        "",
      ),
    };
  }
  throw new ConfigError("LATCHKEY_SMS_PROVIDER: must be log, webhook or twilio");
}

function smsConfig(env: Env, attempt: <T>(f: () => T) => T | undefined): SmsConfig {
  const get = (name: keyof typeof smsDefaults) => env[name]?.trim() || smsDefaults[name];
  const production = env.NODE_ENV?.trim() === "production";
  const whole = (name: keyof typeof smsDefaults, min: number, max: number) =>
    attempt(() => integer(name, get(name), min, max));
  const notice = get("LATCHKEY_SMS_REMOVAL_NOTICE").toLowerCase();
  return {
    provider: attempt(() => smsProvider(get, production)),
    limitPerUser: whole("LATCHKEY_SMS_LIMIT_PER_USER", 0, 100000),
    limitPerNumber: whole("LATCHKEY_SMS_LIMIT_PER_NUMBER", 0, 100000),
    limitPerPrefix: whole("LATCHKEY_SMS_LIMIT_PER_PREFIX", 0, 1000000),
    limitPrefixDigits: whole("LATCHKEY_SMS_LIMIT_PREFIX_DIGITS", 1, 15),
    removalNotice: attempt(() => {
      if (notice !== "true" && notice !== "false")
        throw new ConfigError("LATCHKEY_SMS_REMOVAL_NOTICE: must be true or false");
      return notice === "true";
    }),
    outboxKey: attempt(() => outboxKey(get("LATCHKEY_SMS_OUTBOX_KEY"), production)),
    timeoutMs: whole("LATCHKEY_SMS_TIMEOUT_MS", 100, 120000),
    maxAttempts: whole("LATCHKEY_SMS_MAX_ATTEMPTS", 1, 100),
    retryBaseMs: whole("LATCHKEY_SMS_RETRY_BASE_MS", 10, 3600000),
  } as SmsConfig;
}
