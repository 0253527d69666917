import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../src/config.ts";

const refused = (env: Record<string, string>, ...names: RegExp[]) =>
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => err instanceof ConfigError && names.every((n) => n.test(err.message)),
  );

const webhook = {
  LATCHKEY_SMS_PROVIDER: "webhook",
  LATCHKEY_SMS_WEBHOOK_URL: "https://sms.example.com/hook",
  LATCHKEY_SMS_WEBHOOK_SECRET: "0123456789abcdef",
};

describe("SMS settings", () => {
  it("default to the development log sender, with limits and removal notices on", () => {
    const { sms } = loadConfig({});
    assert.deepEqual(sms, {
      provider: { kind: "log" },
      limitPerUser: 5,
      limitPerNumber: 5,
      limitPerPrefix: 100,
      limitPrefixDigits: 6,
      removalNotice: true,
      outboxKey: null,
      timeoutMs: 10000,
      maxAttempts: 5,
      retryBaseMs: 2000,
      concurrency: 50,
    });
  });

  it("read a webhook, which needs its URL and a secret", () => {
    assert.deepEqual(loadConfig(webhook).sms.provider, {
      kind: "webhook",
      url: "https://sms.example.com/hook",
      secret: "0123456789abcdef",
    });
    refused({ LATCHKEY_SMS_PROVIDER: "webhook" }, /LATCHKEY_SMS_WEBHOOK_URL: required/);
    refused({ ...webhook, LATCHKEY_SMS_WEBHOOK_SECRET: "" }, /LATCHKEY_SMS_WEBHOOK_SECRET: required/);
    refused({ ...webhook, LATCHKEY_SMS_WEBHOOK_SECRET: "short" }, /LATCHKEY_SMS_WEBHOOK_SECRET: must be/);
    refused({ ...webhook, LATCHKEY_SMS_WEBHOOK_URL: "ftp://x" }, /LATCHKEY_SMS_WEBHOOK_URL/);
  });

  it("read Twilio with a sender number or a messaging service, and a base URL for tests", () => {
    const twilio = {
      LATCHKEY_SMS_PROVIDER: "twilio",
      LATCHKEY_SMS_TWILIO_ACCOUNT_SID: "AC123",
      LATCHKEY_SMS_TWILIO_AUTH_TOKEN: "token",
      LATCHKEY_SMS_TWILIO_FROM: "+15005550006",
    };
    assert.deepEqual(loadConfig(twilio).sms.provider, {
      kind: "twilio",
      accountSid: "AC123",
      authToken: "token",
      from: "+15005550006",
      baseUrl: "https://api.twilio.com",
    });
    const viaService = loadConfig({
      ...twilio,
      LATCHKEY_SMS_TWILIO_FROM: "MG123",
      LATCHKEY_SMS_TWILIO_BASE_URL: "http://127.0.0.1:9999/",
    }).sms.provider;
    assert.equal(viaService.kind === "twilio" && viaService.from, "MG123");
    assert.equal(viaService.kind === "twilio" && viaService.baseUrl, "http://127.0.0.1:9999");
    refused({ ...twilio, LATCHKEY_SMS_TWILIO_ACCOUNT_SID: "123" }, /LATCHKEY_SMS_TWILIO_ACCOUNT_SID/);
    refused({ ...twilio, LATCHKEY_SMS_TWILIO_FROM: "Latchkey" }, /LATCHKEY_SMS_TWILIO_FROM/);
    refused({ ...twilio, LATCHKEY_SMS_TWILIO_AUTH_TOKEN: "" }, /LATCHKEY_SMS_TWILIO_AUTH_TOKEN: required/);
    refused(
      { LATCHKEY_SMS_PROVIDER: "carrier-pigeon" },
      /LATCHKEY_SMS_PROVIDER: must be log, webhook or twilio/,
    );
  });

  it("take limits, the notice switch and the outbox key, and refuse bad values by name", () => {
    const { sms } = loadConfig({
      LATCHKEY_SMS_LIMIT_PER_USER: "0",
      LATCHKEY_SMS_LIMIT_PER_NUMBER: "3",
      LATCHKEY_SMS_LIMIT_PER_PREFIX: "40",
      LATCHKEY_SMS_LIMIT_PREFIX_DIGITS: "7",
      LATCHKEY_SMS_REMOVAL_NOTICE: "false",
      LATCHKEY_SMS_OUTBOX_KEY: "ab".repeat(32),
    });
    assert.equal(sms.limitPerUser, 0);
    assert.equal(sms.limitPerNumber, 3);
    assert.equal(sms.limitPerPrefix, 40);
    assert.equal(sms.limitPrefixDigits, 7);
    assert.equal(sms.removalNotice, false);
    assert.deepEqual(sms.outboxKey, Buffer.alloc(32, 0xab));
    const base64 = Buffer.alloc(32, 7).toString("base64");
    assert.deepEqual(loadConfig({ LATCHKEY_SMS_OUTBOX_KEY: base64 }).sms.outboxKey, Buffer.alloc(32, 7));
    refused(
      {
        LATCHKEY_SMS_LIMIT_PER_USER: "-1",
        LATCHKEY_SMS_REMOVAL_NOTICE: "maybe",
        LATCHKEY_SMS_OUTBOX_KEY: "too-short",
        LATCHKEY_SMS_MAX_ATTEMPTS: "0",
        LATCHKEY_SMS_CONCURRENCY: "0",
      },
      /LATCHKEY_SMS_LIMIT_PER_USER/,
      /LATCHKEY_SMS_REMOVAL_NOTICE/,
      /LATCHKEY_SMS_OUTBOX_KEY: must be 32 bytes/,
      /LATCHKEY_SMS_MAX_ATTEMPTS/,
      /LATCHKEY_SMS_CONCURRENCY/,
    );
  });

  it("refuse the log sender and an unencrypted outbox when NODE_ENV=production", () => {
    refused(
      { NODE_ENV: "production" },
      /LATCHKEY_SMS_PROVIDER: log only writes codes to the log/,
      /LATCHKEY_SMS_OUTBOX_KEY: required when NODE_ENV=production/,
    );
    const ok = loadConfig({ NODE_ENV: "production", ...webhook, LATCHKEY_SMS_OUTBOX_KEY: "cd".repeat(32) });
    assert.equal(ok.sms.provider.kind, "webhook");
  });

  it("stop the process at start, naming the setting, when production would log codes", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, NODE_ENV: "production", LATCHKEY_SMS_OUTBOX_KEY: "cd".repeat(32) },
      encoding: "utf8",
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /LATCHKEY_SMS_PROVIDER: log only writes codes to the log/);
  });
});
