import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../src/config.ts";

describe("sign-in settings", () => {
  it("default to ASVS-minded policies, argon2id at OWASP's cost, and ending sessions on factor removal", () => {
    const c = loadConfig({});
    assert.deepEqual(c.passwordComplexity, {
      minLength: 8,
      hasUppercase: false,
      hasLowercase: false,
      hasNumber: false,
      hasSymbol: false,
    });
    assert.deepEqual(c.lockout, { maxPasswordAttempts: 10, maxOtpAttempts: 5 });
    assert.deepEqual(c.argon2, { memoryKib: 19456, iterations: 2, parallelism: 1 });
    assert.equal(c.otpSmsTtlSeconds, 300);
    assert.equal(c.endSessionsOnFactorRemoval, true);
  });

  it("are read from the environment", () => {
    const c = loadConfig({
      LATCHKEY_PASSWORD_MIN_LENGTH: "12",
      LATCHKEY_PASSWORD_REQUIRE_SYMBOL: "true",
      LATCHKEY_LOCKOUT_MAX_OTP_ATTEMPTS: "0",
      LATCHKEY_END_SESSIONS_ON_FACTOR_REMOVAL: "false",
    });
    assert.equal(c.passwordComplexity.minLength, 12);
    assert.equal(c.passwordComplexity.hasSymbol, true);
    assert.equal(c.lockout.maxOtpAttempts, 0);
    assert.equal(c.endSessionsOnFactorRemoval, false);
  });

  it("refuse nonsense, naming each bad setting", () => {
    assert.throws(
      () =>
        loadConfig({
          LATCHKEY_PASSWORD_REQUIRE_NUMBER: "yes",
          LATCHKEY_ARGON2_MEMORY_KIB: "8",
          LATCHKEY_OTP_SMS_TTL_SECONDS: "5",
        }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /LATCHKEY_PASSWORD_REQUIRE_NUMBER/.test(err.message) &&
        /LATCHKEY_ARGON2_MEMORY_KIB/.test(err.message) &&
        /LATCHKEY_OTP_SMS_TTL_SECONDS/.test(err.message),
    );
  });
});
