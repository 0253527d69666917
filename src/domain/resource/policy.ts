import { alreadyExists, invalid, notFound, precondition } from "../errors.ts";
import { type Decision, emit } from "../events.ts";
import { type LockoutPolicy, maxPasswordLength, type PasswordComplexityPolicy } from "../policy.ts";
import type { ResourceState } from "./state.ts";

// An organization's own policies, which take the place of the instance's while they exist.
// Event names and payload fields follow ZITADEL's org.policy.* events.
export const OrgPolicyEvent = {
  complexityAdded: "org.policy.password.complexity.added",
  complexityChanged: "org.policy.password.complexity.changed",
  complexityRemoved: "org.policy.password.complexity.removed",
  lockoutAdded: "org.policy.lockout.added",
  lockoutChanged: "org.policy.lockout.changed",
  lockoutRemoved: "org.policy.lockout.removed",
} as const;

export interface ComplexityPayload {
  readonly minLength: number;
  readonly hasUppercase: boolean;
  readonly hasLowercase: boolean;
  readonly hasNumber: boolean;
  readonly hasSymbol: boolean;
}

export interface LockoutPayload {
  readonly maxPasswordAttempts: number;
  readonly maxOTPAttempts: number;
}

const toLockoutPayload = (p: LockoutPolicy): LockoutPayload => ({
  maxPasswordAttempts: p.maxPasswordAttempts,
  maxOTPAttempts: p.maxOtpAttempts,
});

export const lockoutOf = (p: LockoutPayload): LockoutPolicy => ({
  maxPasswordAttempts: p.maxPasswordAttempts,
  maxOtpAttempts: p.maxOTPAttempts,
});

function assertOrg(s: ResourceState): void {
  if (s.kind !== "org" || s.sequence === 0) throw notFound("ORG-EA2fc", "Organization could not be found");
}

function assertValidComplexity(p: PasswordComplexityPolicy): void {
  if (!Number.isInteger(p.minLength) || p.minLength < 1 || p.minLength > maxPasswordLength)
    throw invalid("LK-PW-MINLEN", `Minimum length must be from 1 to ${maxPasswordLength}`);
}

function assertValidLockout(p: LockoutPolicy): void {
  const ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= 1000;
  if (!ok(p.maxPasswordAttempts) || !ok(p.maxOtpAttempts))
    throw invalid("LK-LOCKOUT-MAX", "Attempt limits must be from 0 (no limit) to 1000");
}

const same = <T extends object>(a: T, b: T) => (Object.keys(a) as (keyof T)[]).every((k) => a[k] === b[k]);

export function addComplexityPolicy(s: ResourceState, p: PasswordComplexityPolicy): Decision {
  assertOrg(s);
  assertValidComplexity(p);
  if (s.passwordComplexity)
    throw alreadyExists("Org-LdhbS", "The organization already has its own password complexity policy");
  return emit({ type: OrgPolicyEvent.complexityAdded, payload: { ...p } satisfies ComplexityPayload });
}

export function changeComplexityPolicy(s: ResourceState, p: PasswordComplexityPolicy): Decision {
  assertOrg(s);
  assertValidComplexity(p);
  if (!s.passwordComplexity)
    throw notFound("ORG-Dgs3g", "The organization has no password complexity policy of its own");
  if (same(s.passwordComplexity, p)) throw precondition("Org-DAs21", "The policy has not changed");
  return emit({ type: OrgPolicyEvent.complexityChanged, payload: { ...p } satisfies ComplexityPayload });
}

export function removeComplexityPolicy(s: ResourceState): Decision {
  assertOrg(s);
  if (!s.passwordComplexity)
    throw notFound("ORG-ADgs2", "The organization has no password complexity policy of its own");
  return emit({ type: OrgPolicyEvent.complexityRemoved, payload: null });
}

export function addLockoutPolicy(s: ResourceState, p: LockoutPolicy): Decision {
  assertOrg(s);
  assertValidLockout(p);
  if (s.lockout) throw alreadyExists("ORG-0olDf", "The organization already has its own lockout policy");
  return emit({ type: OrgPolicyEvent.lockoutAdded, payload: { ...toLockoutPayload(p) } });
}

export function changeLockoutPolicy(s: ResourceState, p: LockoutPolicy): Decision {
  assertOrg(s);
  assertValidLockout(p);
  if (!s.lockout) throw notFound("ORG-ADfs1", "The organization has no lockout policy of its own");
  if (same(s.lockout, p)) throw precondition("ORG-0JFSr", "The policy has not changed");
  return emit({ type: OrgPolicyEvent.lockoutChanged, payload: { ...toLockoutPayload(p) } });
}

export function removeLockoutPolicy(s: ResourceState): Decision {
  assertOrg(s);
  if (!s.lockout) throw notFound("ORG-D4zuz", "The organization has no lockout policy of its own");
  return emit({ type: OrgPolicyEvent.lockoutRemoved, payload: null });
}
