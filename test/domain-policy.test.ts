import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DomainError, type ErrorKind } from "../src/domain/errors.ts";
import type { Decision, NewEvent } from "../src/domain/events.ts";
import * as policy from "../src/domain/resource/policy.ts";
import {
  emptyResource,
  foldResource,
  type ResourceState,
  resourceEvent,
} from "../src/domain/resource/state.ts";
import { recorded } from "./support/decider.ts";

const org = (...history: NewEvent[]): ResourceState =>
  foldResource(
    emptyResource("org", "o1"),
    recorded([{ type: resourceEvent("org").added, payload: { name: "Acme" } }, ...history], "o1", {
      type: "org",
      id: "o1",
    }),
  );
const complexity = {
  minLength: 12,
  hasUppercase: true,
  hasLowercase: false,
  hasNumber: false,
  hasSymbol: false,
};
const lockout = { maxPasswordAttempts: 4, maxOtpAttempts: 2 };
const complexityAdded = { type: policy.OrgPolicyEvent.complexityAdded, payload: { ...complexity } };
const lockoutAdded = {
  type: policy.OrgPolicyEvent.lockoutAdded,
  payload: { maxPasswordAttempts: 4, maxOTPAttempts: 2 },
};
const rejects = (d: () => Decision, kind: ErrorKind, id: string) =>
  assert.throws(d, (e: unknown) => e instanceof DomainError && e.kind === kind && e.id === id);

describe("organization policy decisions", () => {
  it("adds an organization's own policies, which its state then holds", () => {
    assert.deepEqual(policy.addComplexityPolicy(org(), complexity).events, [complexityAdded]);
    assert.deepEqual(policy.addLockoutPolicy(org(), lockout).events, [lockoutAdded]);
    const s = org(complexityAdded, lockoutAdded);
    assert.deepEqual(s.passwordComplexity, complexity);
    assert.deepEqual(s.lockout, lockout);
  });
  it("refuses a second add, an unchanged change, and changes or resets of what is not there", () => {
    rejects(
      () => policy.addComplexityPolicy(org(complexityAdded), complexity),
      "already_exists",
      "Org-LdhbS",
    );
    rejects(
      () => policy.changeComplexityPolicy(org(complexityAdded), complexity),
      "failed_precondition",
      "Org-DAs21",
    );
    rejects(() => policy.changeComplexityPolicy(org(), complexity), "not_found", "ORG-Dgs3g");
    rejects(() => policy.removeComplexityPolicy(org()), "not_found", "ORG-ADgs2");
    rejects(() => policy.addLockoutPolicy(org(lockoutAdded), lockout), "already_exists", "ORG-0olDf");
    rejects(() => policy.changeLockoutPolicy(org(lockoutAdded), lockout), "failed_precondition", "ORG-0JFSr");
    rejects(() => policy.changeLockoutPolicy(org(), lockout), "not_found", "ORG-ADfs1");
    rejects(() => policy.removeLockoutPolicy(org()), "not_found", "ORG-D4zuz");
  });
  it("refuses limits that make no sense", () => {
    rejects(
      () => policy.addComplexityPolicy(org(), { ...complexity, minLength: 0 }),
      "invalid_argument",
      "LK-PW-MINLEN",
    );
    rejects(
      () => policy.addLockoutPolicy(org(), { ...lockout, maxOtpAttempts: -1 }),
      "invalid_argument",
      "LK-LOCKOUT-MAX",
    );
  });
  it("falls back to the instance's once reset", () => {
    const s = org(complexityAdded, { type: policy.OrgPolicyEvent.complexityRemoved, payload: null });
    assert.equal(s.passwordComplexity, null);
    assert.deepEqual(policy.removeLockoutPolicy(org(lockoutAdded)).events, [
      { type: policy.OrgPolicyEvent.lockoutRemoved, payload: null },
    ]);
  });
});
