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
  };
  if (problems.length > 0) throw new ConfigError(`Invalid configuration:\n  ${problems.join("\n  ")}`);
  return config as Config;
}
