import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError, loadConfig, readConfigFile, withoutPassword } from "../src/config.ts";

describe("configuration", () => {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-config-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const file = (yaml: string) => {
    const path = join(dir, `c${n++}.yaml`);
    writeFileSync(path, yaml);
    return path;
  };
  const refused = (f: () => unknown, ...named: RegExp[]) =>
    assert.throws(f, (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      for (const re of named) assert.match(err.message, re);
      return true;
    });

  it("reads a YAML file, and the environment overrides it", () => {
    const path = file(
      [
        "port: 9000",
        "database:",
        "  url: postgres://lk@db/lk",
        "  poolSize: 25",
        "log:",
        "  level: warn",
        "metrics:",
        "  enabled: false",
      ].join("\n"),
    );
    const config = loadConfig({ LATCHKEY_PORT: "9001" }, readConfigFile(path));
    assert.equal(config.port, 9001);
    assert.equal(config.logLevel, "warn");
    assert.equal(config.metricsEnabled, false);
    assert.deepEqual(config.database, {
      kind: "postgres",
      url: "postgres://lk@db/lk",
      poolSize: 25,
      statementTimeoutMs: 5000,
      connectTimeoutMs: 3000,
    });
  });

  it("takes an empty file as no settings", () => {
    assert.equal(loadConfig({}, readConfigFile(file(""))).port, 8080);
  });

  it("refuses unknown keys, naming each", () => {
    const path = file(["databse:", "  url: sqlite:x.db", "database:", "  poolsize: 3", "prot: 1"].join("\n"));
    refused(
      () => readConfigFile(path),
      /databse: unknown setting/,
      /database\.poolsize: unknown setting/,
      /prot: unknown setting/,
    );
  });

  it("refuses a section where a value belongs and a value where a section belongs", () => {
    refused(() => readConfigFile(file("port:\n  number: 1\n")), /port: must be a single value/);
    refused(() => readConfigFile(file("database: sqlite:x.db\n")), /database: must be a section with url/);
    refused(() => readConfigFile(file("- port\n")), /key: value pairs/);
  });

  it("refuses bad values, naming the file key or the variable they came from", () => {
    const path = file("port: eighty\nlog:\n  level: loud\n");
    refused(
      () => loadConfig({ LATCHKEY_DATABASE_URL: "mysql://x" }, readConfigFile(path)),
      new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: port: "eighty"`),
      /: log\.level: "loud" must be one of debug, info, warn, error, silent/,
      /LATCHKEY_DATABASE_URL: must start with sqlite: or postgres:\/\//,
    );
  });

  it("says so when the file cannot be read or is not YAML", () => {
    refused(() => readConfigFile(join(dir, "missing.yaml")), /missing\.yaml: cannot be read \(ENOENT\)/);
    refused(() => readConfigFile(file("port: [1\n")), /not valid YAML/);
  });

  it("hides the password of a database URL", () => {
    assert.equal(
      withoutPassword("postgres://latchkey:s3cret@db:5432/lk?sslmode=require&password=other"),
      "postgres://latchkey:****@db:5432/lk?sslmode=require&password=****",
    );
    assert.equal(withoutPassword("sqlite:.latchkey/latchkey.db"), "sqlite:.latchkey/latchkey.db");
  });
});
