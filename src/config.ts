// Every setting Latchkey reads, parsed and checked once at start. Nothing else reads the
// environment or the configuration file: the parsed Config is passed to what needs it.
//
// One schema below names each setting's environment variable, its key in the YAML file, its
// default and its meaning. The README's configuration table is generated from it
// (`npm run docs`), and a test fails when the two disagree.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { LockoutPolicy, PasswordComplexityPolicy } from "./domain/policy.ts";

export type DatabaseConfig =
  | { readonly kind: "sqlite"; readonly path: string }
  | ({ readonly kind: "postgres"; readonly url: string } & Partial<PostgresPoolConfig>);

// loadConfig always sets these; a DatabaseConfig built by hand (tests) may leave them to defaults.
export interface PostgresPoolConfig {
  readonly poolSize: number;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

export const logLevels = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];
export const logFormats = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof logFormats)[number];

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly database: DatabaseConfig;
  readonly adminPatPath: string;
  readonly defaultRegion: string;
  readonly codeTtlSeconds: number;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  readonly metricsEnabled: boolean;
  readonly sms: SmsConfig;
  readonly otpSmsTtlSeconds: number;
  readonly passwordResetTtlSeconds: number;
  // The policies of every organization.
  readonly passwordComplexity: PasswordComplexityPolicy;
  readonly lockout: LockoutPolicy;
  readonly argon2: Argon2Config;
  readonly endSessionsOnFactorRemoval: boolean;
  readonly limits: Limits;
}

// argon2id cost: memory in KiB, passes, lanes. The defaults are OWASP's first recommendation.
export interface Argon2Config {
  readonly memoryKib: number;
  readonly iterations: number;
  readonly parallelism: number;
}

// What one client may ask of the server: sizes, times and rates.
export interface Limits {
  readonly maxBodyBytes: number;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxStreamsPerConnection: number;
  // Per authenticated caller; 0 turns the write limit off.
  readonly writesPerMinute: number;
  readonly writeBurst: number;
  readonly shutdownGraceMs: number;
}

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
  // Provider calls this node has open at once.
  readonly concurrency: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

interface Setting {
  // Dotted path in the YAML file: "database.poolSize" is `database:` then `poolSize:`.
  readonly key: string;
  readonly default: string;
  readonly meaning: string;
  // How `latchkey config` shows the value: a URL with its password hidden, or nothing at all.
  readonly secret?: "url-password" | "whole";
  // What is wrong with a value, not naming the setting (the caller names it, as variable or
  // file key), or undefined when it is fine.
  readonly check: (raw: string) => string | undefined;
}

const wholeNumber = (min: number, max: number) => (raw: string) => {
  const n = Number(raw);
  return /^\d+$/.test(raw) && n >= min && n <= max
    ? undefined
    : `"${raw}" is not a whole number from ${min} to ${max}`;
};
const oneOf = (allowed: readonly string[]) => (raw: string) =>
  allowed.includes(raw) ? undefined : `"${raw}" must be one of ${allowed.join(", ")}`;
const notEmpty = (raw: string) => (raw === "" ? "must not be empty" : undefined);
const httpUrl = (raw: string) => {
  if (raw === "") return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `"${raw}" is not a URL`;
  }
  return url.protocol === "https:" || url.protocol === "http:"
    ? undefined
    : "must be an http:// or https:// URL";
};
const keyBytes = (raw: string) =>
  /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, "hex") : Buffer.from(raw, "base64");

export const settings = {
  LATCHKEY_PORT: {
    key: "port",
    default: "8080",
    meaning: "TCP port for every protocol (REST, gRPC, gRPC-web, Connect), health and metrics; 0 picks one",
    check: wholeNumber(0, 65535),
  },
  LATCHKEY_HOST: {
    key: "host",
    default: "127.0.0.1",
    meaning: "Address to listen on; 0.0.0.0 or :: for every interface",
    check: notEmpty,
  },
  LATCHKEY_DATABASE_URL: {
    key: "database.url",
    default: "sqlite:.latchkey/latchkey.db",
    meaning: "`sqlite:<file>` for one node, or `postgres://user:password@host:port/database` for several",
    secret: "url-password",
    check: (raw) => {
      if (raw.startsWith("sqlite:")) return sqlitePath(raw) === "" ? "sqlite: needs a file path" : undefined;
      return raw.startsWith("postgres://") || raw.startsWith("postgresql://")
        ? undefined
        : "must start with sqlite: or postgres://";
    },
  },
  LATCHKEY_DATABASE_POOL_SIZE: {
    key: "database.poolSize",
    default: "10",
    meaning: "PostgreSQL: most connections this node opens",
    check: wholeNumber(1, 1000),
  },
  LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS: {
    key: "database.statementTimeoutMs",
    default: "5000",
    meaning: "PostgreSQL: longest a statement may run before the call answers Unavailable",
    check: wholeNumber(100, 600000),
  },
  LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS: {
    key: "database.connectTimeoutMs",
    default: "3000",
    meaning: "PostgreSQL: longest wait for a new connection, a free one in the pool, or a place in a batch",
    check: wholeNumber(100, 600000),
  },
  LATCHKEY_ADMIN_PAT_PATH: {
    key: "adminPatPath",
    default: ".latchkey/admin.pat",
    meaning: "Where the first start writes the admin's token (mode 0600)",
    check: notEmpty,
  },
  LATCHKEY_DEFAULT_REGION: {
    key: "defaultRegion",
    default: "CH",
    meaning: "Region of phone numbers written without a country code",
    check: (raw) =>
      /^[A-Za-z]{2}$/.test(raw) ? undefined : `"${raw}" must be a two-letter region such as CH`,
  },
  LATCHKEY_CODE_TTL_SECONDS: {
    key: "codeTtlSeconds",
    default: "600",
    meaning: "How long a phone verification code stays valid",
    check: wholeNumber(30, 86400),
  },
  LATCHKEY_LOG_LEVEL: {
    key: "log.level",
    default: "info",
    meaning: `Least severe log line written: ${logLevels.join(", ")}`,
    check: oneOf(logLevels),
  },
  LATCHKEY_LOG_FORMAT: {
    key: "log.format",
    default: "auto",
    meaning: "json (one object a line), pretty (for people), or auto: pretty on a terminal, else json",
    check: oneOf(logFormats),
  },
  LATCHKEY_METRICS_ENABLED: {
    key: "metrics.enabled",
    default: "true",
    meaning: "Serve Prometheus metrics at GET /metrics",
    check: oneOf(["true", "false"]),
  },
  LATCHKEY_SMS_PROVIDER: {
    key: "sms.provider",
    default: "log",
    meaning:
      "`log` (development: writes the SMS to the log; refused when `NODE_ENV=production`), `webhook` or `twilio`",
    check: (raw) =>
      ["log", "webhook", "twilio"].includes(raw) ? undefined : "must be log, webhook or twilio",
  },
  LATCHKEY_SMS_WEBHOOK_URL: {
    key: "sms.webhookUrl",
    default: "",
    meaning: "Where `webhook` POSTs each message",
    check: httpUrl,
  },
  LATCHKEY_SMS_WEBHOOK_SECRET: {
    key: "sms.webhookSecret",
    default: "",
    meaning: "HMAC key for the `Latchkey-Signature` header (16 characters or more)",
    secret: "whole",
    check: (raw) => (raw === "" || raw.length >= 16 ? undefined : "must be at least 16 characters"),
  },
  LATCHKEY_SMS_TWILIO_ACCOUNT_SID: {
    key: "sms.twilioAccountSid",
    default: "",
    meaning: "Twilio account SID (`AC...`)",
    check: (raw) => (raw === "" || /^AC\w+$/.test(raw) ? undefined : "must be an account SID (AC...)"),
  },
  LATCHKEY_SMS_TWILIO_AUTH_TOKEN: {
    key: "sms.twilioAuthToken",
    default: "",
    meaning: "Twilio auth token",
    secret: "whole",
    check: () => undefined,
  },
  LATCHKEY_SMS_TWILIO_FROM: {
    key: "sms.twilioFrom",
    default: "",
    meaning: "A sender number (`+1...`) or a messaging service SID (`MG...`)",
    check: (raw) =>
      raw === "" || /^(\+[1-9]\d{1,14}|MG\w+)$/.test(raw)
        ? undefined
        : "must be a sender number in E.164 (+...) or a messaging service SID (MG...)",
  },
  LATCHKEY_SMS_TWILIO_BASE_URL: {
    key: "sms.twilioBaseUrl",
    default: "https://api.twilio.com",
    meaning: "Twilio's API address (another one for tests)",
    check: httpUrl,
  },
  LATCHKEY_SMS_LIMIT_PER_USER: {
    key: "sms.limitPerUser",
    default: "5",
    meaning: "Codes per user per hour (`0`: no limit)",
    check: wholeNumber(0, 100000),
  },
  LATCHKEY_SMS_LIMIT_PER_NUMBER: {
    key: "sms.limitPerNumber",
    default: "5",
    meaning: "Codes per phone number per hour (`0`: no limit)",
    check: wholeNumber(0, 100000),
  },
  LATCHKEY_SMS_LIMIT_PER_PREFIX: {
    key: "sms.limitPerPrefix",
    default: "100",
    meaning: "Codes per number prefix per hour (`0`: no limit)",
    check: wholeNumber(0, 1000000),
  },
  LATCHKEY_SMS_LIMIT_PREFIX_DIGITS: {
    key: "sms.limitPrefixDigits",
    default: "6",
    meaning: "Digits after the `+` that make a prefix",
    check: wholeNumber(1, 15),
  },
  LATCHKEY_SMS_REMOVAL_NOTICE: {
    key: "sms.removalNotice",
    default: "true",
    meaning: "Notify the number when OTP SMS ends",
    check: (raw) => (["true", "false"].includes(raw.toLowerCase()) ? undefined : "must be true or false"),
  },
  LATCHKEY_SMS_OUTBOX_KEY: {
    key: "sms.outboxKey",
    default: "",
    meaning:
      "32 bytes (64 hex digits or base64) that encrypt texts waiting in the outbox; required when `NODE_ENV=production`",
    secret: "whole",
    check: (raw) =>
      raw === "" || keyBytes(raw).length === 32 ? undefined : "must be 32 bytes, as 64 hex digits or base64",
  },
  LATCHKEY_SMS_TIMEOUT_MS: {
    key: "sms.timeoutMs",
    default: "10000",
    meaning: "How long one provider call may take",
    check: wholeNumber(100, 120000),
  },
  LATCHKEY_SMS_MAX_ATTEMPTS: {
    key: "sms.maxAttempts",
    default: "5",
    meaning: "Attempts per message",
    check: wholeNumber(1, 100),
  },
  LATCHKEY_SMS_CONCURRENCY: {
    key: "sms.concurrency",
    default: "50",
    meaning: "Messages this node sends at once, each one provider call",
    check: wholeNumber(1, 1000),
  },
  LATCHKEY_SMS_RETRY_BASE_MS: {
    key: "sms.retryBaseMs",
    default: "2000",
    meaning: "Wait before the first retry; each further one about doubles",
    check: wholeNumber(10, 3600000),
  },
  LATCHKEY_OTP_SMS_TTL_SECONDS: {
    key: "session.otpSmsTtlSeconds",
    default: "300",
    meaning: "How long an OTP SMS code sent at sign-in stays valid",
    check: wholeNumber(30, 3600),
  },
  LATCHKEY_END_SESSIONS_ON_FACTOR_REMOVAL: {
    key: "session.endOthersOnFactorRemoval",
    default: "true",
    meaning: "Removing OTP SMS ends the user's other sessions (ASVS 5.0 7.4.3)",
    check: oneOf(["true", "false"]),
  },
  // ASVS 5.0 6.2.1 asks for at least 8 characters and 6.2.5 for no composition rules; an
  // operator who must match ZITADEL's stricter defaults can switch the rules on.
  LATCHKEY_PASSWORD_MIN_LENGTH: {
    key: "password.minLength",
    default: "8",
    meaning: "Shortest password, in characters, unless an organization sets its own policy",
    check: wholeNumber(1, 1024),
  },
  LATCHKEY_PASSWORD_REQUIRE_UPPERCASE: {
    key: "password.requireUppercase",
    default: "false",
    meaning: "Passwords need an uppercase letter (unless an organization sets its own policy)",
    check: oneOf(["true", "false"]),
  },
  LATCHKEY_PASSWORD_REQUIRE_LOWERCASE: {
    key: "password.requireLowercase",
    default: "false",
    meaning: "Passwords need a lowercase letter (unless an organization sets its own policy)",
    check: oneOf(["true", "false"]),
  },
  LATCHKEY_PASSWORD_REQUIRE_NUMBER: {
    key: "password.requireNumber",
    default: "false",
    meaning: "Passwords need a digit (unless an organization sets its own policy)",
    check: oneOf(["true", "false"]),
  },
  LATCHKEY_PASSWORD_REQUIRE_SYMBOL: {
    key: "password.requireSymbol",
    default: "false",
    meaning: "Passwords need a symbol (unless an organization sets its own policy)",
    check: oneOf(["true", "false"]),
  },
  LATCHKEY_PASSWORD_RESET_TTL_SECONDS: {
    key: "password.resetTtlSeconds",
    default: "3600",
    meaning: "How long a password reset code stays valid",
    check: wholeNumber(60, 7 * 86400),
  },
  LATCHKEY_ARGON2_MEMORY_KIB: {
    key: "argon2.memoryKib",
    default: "19456",
    meaning: "argon2id memory per password hash, in KiB (OWASP's first recommendation by default)",
    check: wholeNumber(1024, 4 * 1024 * 1024),
  },
  LATCHKEY_ARGON2_ITERATIONS: {
    key: "argon2.iterations",
    default: "2",
    meaning: "argon2id passes per password hash",
    check: wholeNumber(1, 100),
  },
  LATCHKEY_ARGON2_PARALLELISM: {
    key: "argon2.parallelism",
    default: "1",
    meaning: "argon2id lanes per password hash",
    check: wholeNumber(1, 16),
  },
  LATCHKEY_LOCKOUT_MAX_PASSWORD_ATTEMPTS: {
    key: "lockout.maxPasswordAttempts",
    default: "10",
    meaning: "Wrong passwords before a user is locked (`0`: never), unless an organization sets its own",
    check: wholeNumber(0, 1000),
  },
  LATCHKEY_LOCKOUT_MAX_OTP_ATTEMPTS: {
    key: "lockout.maxOtpAttempts",
    default: "5",
    meaning: "Wrong OTP codes before a user is locked (`0`: never), unless an organization sets its own",
    check: wholeNumber(0, 1000),
  },
  LATCHKEY_MAX_BODY_BYTES: {
    key: "limits.maxBodyBytes",
    default: "1048576",
    meaning: "Largest request body on any protocol; beyond it REST answers 413, RPC ResourceExhausted",
    check: wholeNumber(1024, 64 * 1024 * 1024),
  },
  LATCHKEY_MAX_HEADER_BYTES: {
    key: "limits.maxHeaderBytes",
    default: "16384",
    meaning: "Largest request headers (HTTP/1.1 and HTTP/2); beyond it the answer is 431",
    check: wholeNumber(1024, 1024 * 1024),
  },
  LATCHKEY_HEADERS_TIMEOUT_MS: {
    key: "limits.headersTimeoutMs",
    default: "10000",
    meaning: "Time a client has to send its request headers, or to say anything on a new connection",
    check: wholeNumber(100, 600000),
  },
  LATCHKEY_REQUEST_TIMEOUT_MS: {
    key: "limits.requestTimeoutMs",
    default: "30000",
    meaning: "Time a client has to send its whole request (answer 408 / stream cancelled)",
    check: wholeNumber(100, 3600000),
  },
  LATCHKEY_MAX_CONNECTIONS: {
    key: "limits.maxConnections",
    default: "1000",
    meaning: "Open connections this node accepts; further ones are closed at once",
    check: wholeNumber(1, 1000000),
  },
  LATCHKEY_MAX_STREAMS_PER_CONNECTION: {
    key: "limits.maxStreamsPerConnection",
    default: "100",
    meaning: "Concurrent HTTP/2 streams (gRPC calls) on one connection",
    check: wholeNumber(1, 10000),
  },
  LATCHKEY_WRITES_PER_MINUTE: {
    key: "limits.writesPerMinute",
    default: "6000",
    meaning:
      "Writes one caller may make per minute after its burst (`0`: no limit); beyond it 429 / ResourceExhausted with a retry delay",
    check: wholeNumber(0, 10000000),
  },
  LATCHKEY_WRITE_BURST: {
    key: "limits.writeBurst",
    default: "300",
    meaning: "Writes one caller may make at once before the per-minute rate applies",
    check: wholeNumber(1, 10000000),
  },
  LATCHKEY_SHUTDOWN_GRACE_MS: {
    key: "limits.shutdownGraceMs",
    default: "10000",
    meaning: "On SIGTERM, how long requests in flight may take to finish; new ones are refused at once",
    check: wholeNumber(0, 600000),
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof settings;
export const settingNames = Object.keys(settings) as SettingName[];

export const defaults = Object.fromEntries(settingNames.map((n) => [n, settings[n].default])) as {
  readonly [N in SettingName]: (typeof settings)[N]["default"];
};

// Values read from a configuration file, by dotted key, as text.
export interface ConfigFile {
  readonly path: string;
  readonly values: ReadonlyMap<string, string>;
}

const byFileKey = new Map<string, SettingName>(settingNames.map((n) => [settings[n].key, n]));

// Reads the YAML file; unknown keys and values that are not plain scalars are refused here,
// values that are scalars but wrong are refused by loadConfig, all naming the key.
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  const values = new Map<string, string>();
  const problems: string[] = [];
  const walk = (node: unknown, prefix: string) => {
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      const key = prefix === "" ? k : `${prefix}.${k}`;
      if (byFileKey.has(key)) {
        if (typeof v === "string" || typeof v === "number" || typeof v === "boolean")
          values.set(key, String(v));
        else problems.push(`${key}: must be a single value, not ${v === null ? "empty" : typeof v}`);
      } else if ([...byFileKey.keys()].some((known) => known.startsWith(`${key}.`))) {
        if (typeof v === "object" && v !== null && !Array.isArray(v)) walk(v, key);
        else problems.push(`${key}: must be a section with ${sectionKeys(key)}`);
      } else {
        problems.push(`${key}: unknown setting`);
      }
    }
  };
  if (doc !== null && doc !== undefined) {
    if (typeof doc !== "object" || Array.isArray(doc)) problems.push("the file must hold key: value pairs");
    else walk(doc, "");
  }
  if (problems.length > 0)
    throw new ConfigError(`Invalid configuration file ${path}:\n  ${problems.join("\n  ")}`);
  return { path, values };
}

const sectionKeys = (section: string) =>
  [...byFileKey.keys()]
    .filter((k) => k.startsWith(`${section}.`))
    .map((k) => k.slice(section.length + 1))
    .join(", ");

export type Source = "default" | "file" | "environment";

export interface EffectiveSetting {
  readonly name: SettingName;
  readonly key: string;
  readonly raw: string;
  readonly source: Source;
}

// Environment over file over default. An empty variable counts as unset.
export function effectiveSettings(env: Env, file?: ConfigFile): EffectiveSetting[] {
  return settingNames.map((name) => {
    const { key } = settings[name];
    const fromEnv = env[name]?.trim();
    if (fromEnv) return { name, key, raw: fromEnv, source: "environment" };
    const fromFile = file?.values.get(key)?.trim();
    if (fromFile) return { name, key, raw: fromFile, source: "file" };
    return { name, key, raw: settings[name].default, source: "default" };
  });
}

function sqlitePath(url: string): string {
  return url.slice("sqlite:".length).replace(/^\/\//, "");
}

// What must hold between settings: the chosen SMS provider's own settings are required, and
// production refuses what would leave codes readable.
function crossProblems(raw: Record<SettingName, string>, production: boolean): [SettingName, string][] {
  const problems: [SettingName, string][] = [];
  const provider = raw.LATCHKEY_SMS_PROVIDER;
  const required = (names: SettingName[]) => {
    for (const n of names)
      if (raw[n] === "") problems.push([n, `required when LATCHKEY_SMS_PROVIDER=${provider}`]);
  };
  if (provider === "webhook") required(["LATCHKEY_SMS_WEBHOOK_URL", "LATCHKEY_SMS_WEBHOOK_SECRET"]);
  if (provider === "twilio")
    required([
      "LATCHKEY_SMS_TWILIO_ACCOUNT_SID",
      "LATCHKEY_SMS_TWILIO_AUTH_TOKEN",
      "LATCHKEY_SMS_TWILIO_FROM",
    ]);
  if (production && provider === "log")
    problems.push([
      "LATCHKEY_SMS_PROVIDER",
      "log only writes codes to the log; set webhook or twilio when NODE_ENV=production",
    ]);
  if (production && raw.LATCHKEY_SMS_OUTBOX_KEY === "")
    problems.push([
      "LATCHKEY_SMS_OUTBOX_KEY",
      "required when NODE_ENV=production (32 bytes as 64 hex digits or base64)",
    ]);
  if (Number(raw.LATCHKEY_HEADERS_TIMEOUT_MS) > Number(raw.LATCHKEY_REQUEST_TIMEOUT_MS))
    problems.push(["LATCHKEY_HEADERS_TIMEOUT_MS", "must not be longer than LATCHKEY_REQUEST_TIMEOUT_MS"]);
  return problems;
}

function smsProvider(raw: Record<SettingName, string>): SmsProviderConfig {
  switch (raw.LATCHKEY_SMS_PROVIDER) {
    case "webhook":
      return { kind: "webhook", url: raw.LATCHKEY_SMS_WEBHOOK_URL, secret: raw.LATCHKEY_SMS_WEBHOOK_SECRET };
    case "twilio":
      return {
        kind: "twilio",
        accountSid: raw.LATCHKEY_SMS_TWILIO_ACCOUNT_SID,
        authToken: raw.LATCHKEY_SMS_TWILIO_AUTH_TOKEN,
        from: raw.LATCHKEY_SMS_TWILIO_FROM,
        baseUrl: raw.LATCHKEY_SMS_TWILIO_BASE_URL.replace(/\/+$/, ""),
      };
    default:
      return { kind: "log" };
  }
}

// Checks every setting, reports all problems at once, each named the way it was given.
// NODE_ENV=production (read here, as every Node program reads it) makes the SMS settings strict.
export function loadConfig(env: Env, file?: ConfigFile): Config {
  const effective = effectiveSettings(env, file);
  const problems: string[] = [];
  const where = (name: SettingName) => {
    const s = effective.find((e) => e.name === name);
    return s?.source === "file" ? `${file?.path}: ${s.key}` : name;
  };
  for (const s of effective) {
    const problem = (settings[s.name] as Setting).check(s.raw);
    if (problem !== undefined) problems.push(`${where(s.name)}: ${problem}`);
  }
  const raw = Object.fromEntries(effective.map((s) => [s.name, s.raw])) as Record<SettingName, string>;
  const production = env.NODE_ENV?.trim() === "production";
  for (const [name, problem] of crossProblems(raw, production)) problems.push(`${where(name)}: ${problem}`);
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join("\n  ")}`);

  const url = raw.LATCHKEY_DATABASE_URL;
  const database: DatabaseConfig = url.startsWith("sqlite:")
    ? { kind: "sqlite", path: sqlitePath(url) }
    : {
        kind: "postgres",
        url,
        poolSize: Number(raw.LATCHKEY_DATABASE_POOL_SIZE),
        statementTimeoutMs: Number(raw.LATCHKEY_DATABASE_STATEMENT_TIMEOUT_MS),
        connectTimeoutMs: Number(raw.LATCHKEY_DATABASE_CONNECT_TIMEOUT_MS),
      };
  return {
    port: Number(raw.LATCHKEY_PORT),
    host: raw.LATCHKEY_HOST,
    database,
    adminPatPath: raw.LATCHKEY_ADMIN_PAT_PATH,
    defaultRegion: raw.LATCHKEY_DEFAULT_REGION.toUpperCase(),
    codeTtlSeconds: Number(raw.LATCHKEY_CODE_TTL_SECONDS),
    logLevel: raw.LATCHKEY_LOG_LEVEL as LogLevel,
    logFormat: raw.LATCHKEY_LOG_FORMAT as LogFormat,
    metricsEnabled: raw.LATCHKEY_METRICS_ENABLED === "true",
    sms: {
      provider: smsProvider(raw),
      limitPerUser: Number(raw.LATCHKEY_SMS_LIMIT_PER_USER),
      limitPerNumber: Number(raw.LATCHKEY_SMS_LIMIT_PER_NUMBER),
      limitPerPrefix: Number(raw.LATCHKEY_SMS_LIMIT_PER_PREFIX),
      limitPrefixDigits: Number(raw.LATCHKEY_SMS_LIMIT_PREFIX_DIGITS),
      removalNotice: raw.LATCHKEY_SMS_REMOVAL_NOTICE.toLowerCase() === "true",
      outboxKey: raw.LATCHKEY_SMS_OUTBOX_KEY === "" ? null : keyBytes(raw.LATCHKEY_SMS_OUTBOX_KEY),
      timeoutMs: Number(raw.LATCHKEY_SMS_TIMEOUT_MS),
      maxAttempts: Number(raw.LATCHKEY_SMS_MAX_ATTEMPTS),
      retryBaseMs: Number(raw.LATCHKEY_SMS_RETRY_BASE_MS),
      concurrency: Number(raw.LATCHKEY_SMS_CONCURRENCY),
    },
    otpSmsTtlSeconds: Number(raw.LATCHKEY_OTP_SMS_TTL_SECONDS),
    passwordResetTtlSeconds: Number(raw.LATCHKEY_PASSWORD_RESET_TTL_SECONDS),
    passwordComplexity: {
      minLength: Number(raw.LATCHKEY_PASSWORD_MIN_LENGTH),
      hasUppercase: raw.LATCHKEY_PASSWORD_REQUIRE_UPPERCASE === "true",
      hasLowercase: raw.LATCHKEY_PASSWORD_REQUIRE_LOWERCASE === "true",
      hasNumber: raw.LATCHKEY_PASSWORD_REQUIRE_NUMBER === "true",
      hasSymbol: raw.LATCHKEY_PASSWORD_REQUIRE_SYMBOL === "true",
    },
    lockout: {
      maxPasswordAttempts: Number(raw.LATCHKEY_LOCKOUT_MAX_PASSWORD_ATTEMPTS),
      maxOtpAttempts: Number(raw.LATCHKEY_LOCKOUT_MAX_OTP_ATTEMPTS),
    },
    argon2: {
      memoryKib: Number(raw.LATCHKEY_ARGON2_MEMORY_KIB),
      iterations: Number(raw.LATCHKEY_ARGON2_ITERATIONS),
      parallelism: Number(raw.LATCHKEY_ARGON2_PARALLELISM),
    },
    endSessionsOnFactorRemoval: raw.LATCHKEY_END_SESSIONS_ON_FACTOR_REMOVAL === "true",
    limits: {
      maxBodyBytes: Number(raw.LATCHKEY_MAX_BODY_BYTES),
      maxHeaderBytes: Number(raw.LATCHKEY_MAX_HEADER_BYTES),
      headersTimeoutMs: Number(raw.LATCHKEY_HEADERS_TIMEOUT_MS),
      requestTimeoutMs: Number(raw.LATCHKEY_REQUEST_TIMEOUT_MS),
      maxConnections: Number(raw.LATCHKEY_MAX_CONNECTIONS),
      maxStreamsPerConnection: Number(raw.LATCHKEY_MAX_STREAMS_PER_CONNECTION),
      writesPerMinute: Number(raw.LATCHKEY_WRITES_PER_MINUTE),
      writeBurst: Number(raw.LATCHKEY_WRITE_BURST),
      shutdownGraceMs: Number(raw.LATCHKEY_SHUTDOWN_GRACE_MS),
    },
  };
}

const hidden = "****";

// A value as `latchkey config` may print it: passwords and secrets replaced.
export function shown(s: EffectiveSetting): string {
  const secret: Setting["secret"] = (settings[s.name] as Setting).secret;
  if (secret === "whole") return s.raw === "" ? "" : hidden;
  if (secret === "url-password") return withoutPassword(s.raw);
  return s.raw;
}

export function withoutPassword(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url.startsWith("sqlite:") ? url : hidden;
  }
  if (u.password !== "") u.password = hidden;
  for (const name of [...u.searchParams.keys()])
    if (/pass|secret|key|token/i.test(name)) u.searchParams.set(name, hidden);
  return u.toString().replace(/%2A%2A%2A%2A/g, hidden);
}
