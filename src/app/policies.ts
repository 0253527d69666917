import { notFound } from "../domain/errors.ts";
import type { AggregateRef, Decision } from "../domain/events.ts";
import type { Permission, Principal } from "../domain/permissions.ts";
import type { LockoutPolicy, PasswordComplexityPolicy } from "../domain/policy.ts";
import * as decide from "../domain/resource/policy.ts";
import { emptyResource, foldResource, type ResourceState } from "../domain/resource/state.ts";
import { authorizeOnOrg, requireAnywhere } from "./authorize.ts";
import type { AppDeps } from "./deps.ts";
import { type Details, detailsOf } from "./details.ts";
import { projectResource } from "./projection.ts";
import { stamp, transact } from "./transact.ts";

// The policies in force for an organization: its own where it has them, else the instance's.
export interface EffectivePolicies {
  readonly passwordComplexity: PasswordComplexityPolicy;
  readonly lockout: LockoutPolicy;
  readonly ownComplexity: boolean;
  readonly ownLockout: boolean;
  readonly org: ResourceState;
}

async function loadOrg(deps: AppDeps, instanceId: string, orgId: string): Promise<ResourceState> {
  const ref: AggregateRef = { type: "org", id: orgId };
  return foldResource(emptyResource("org", orgId), await deps.store.loadEvents(instanceId, ref, 0));
}

export async function orgPolicies(
  deps: AppDeps,
  instanceId: string,
  orgId: string,
): Promise<EffectivePolicies> {
  const org = orgId ? await loadOrg(deps, instanceId, orgId) : emptyResource("org", "");
  const fallback = deps.settings.defaultPolicies;
  return {
    passwordComplexity: org.passwordComplexity ?? fallback.passwordComplexity,
    lockout: org.lockout ?? fallback.lockout,
    ownComplexity: org.passwordComplexity !== null,
    ownLockout: org.lockout !== null,
    org,
  };
}

export type PolicyCommands = ReturnType<typeof policyCommands>;

// The permission each policy command needs in the organization the call names, as ZITADEL's
// management API names them (a reset to the default is a delete there); the authorization
// matrix test reads this table too.
export const policyRules = {
  read: "policy.read",
  write: "policy.write",
  reset: "policy.delete",
} as const satisfies Record<string, Permission>;

// ZITADEL's management API sets an organization's own password complexity and lockout policies.
export function policyCommands(deps: AppDeps, instanceId: string) {
  async function read(principal: Principal, orgId: string): Promise<EffectivePolicies> {
    requireAnywhere(principal, policyRules.read);
    const p = await orgPolicies(deps, instanceId, orgId);
    if (p.org.sequence === 0) throw notFound("ORG-EA2fc", "Organization could not be found");
    authorizeOnOrg(principal, policyRules.read, orgId);
    return p;
  }

  function change(
    principal: Principal,
    orgId: string,
    permission: Permission,
    decideOn: (s: ResourceState) => Decision,
  ): Promise<Details> {
    requireAnywhere(principal, permission);
    return transact(deps, instanceId, principal.userId, async (now) => {
      const before = await loadOrg(deps, instanceId, orgId);
      if (before.sequence === 0) throw notFound("ORG-EA2fc", "Organization could not be found");
      authorizeOnOrg(principal, permission, orgId);
      const { events } = decideOn(before);
      const ref: AggregateRef = { type: "org", id: orgId };
      const stamped = stamp(ref, orgId, principal.userId, before.sequence, now, events);
      return {
        writes: [{ ref, owner: orgId, expectedSequence: before.sequence, events }],
        readModel: projectResource(foldResource(before, stamped), stamped, instanceId),
        result: (recorded) => detailsOf(recorded),
      };
    });
  }

  return {
    read,
    defaults: () => deps.settings.defaultPolicies,
    // What a login UI needs to guide a person: the policies in force, readable by any caller.
    async effective(orgId: string): Promise<EffectivePolicies> {
      const p = await orgPolicies(deps, instanceId, orgId);
      if (p.org.sequence === 0) throw notFound("ORG-EA2fc", "Organization could not be found");
      return p;
    },
    addComplexity: (principal: Principal, orgId: string, p: PasswordComplexityPolicy) =>
      change(principal, orgId, policyRules.write, (s) => decide.addComplexityPolicy(s, p)),
    changeComplexity: (principal: Principal, orgId: string, p: PasswordComplexityPolicy) =>
      change(principal, orgId, policyRules.write, (s) => decide.changeComplexityPolicy(s, p)),
    removeComplexity: (principal: Principal, orgId: string) =>
      change(principal, orgId, policyRules.reset, (s) => decide.removeComplexityPolicy(s)),
    addLockout: (principal: Principal, orgId: string, p: LockoutPolicy) =>
      change(principal, orgId, policyRules.write, (s) => decide.addLockoutPolicy(s, p)),
    changeLockout: (principal: Principal, orgId: string, p: LockoutPolicy) =>
      change(principal, orgId, policyRules.write, (s) => decide.changeLockoutPolicy(s, p)),
    removeLockout: (principal: Principal, orgId: string) =>
      change(principal, orgId, policyRules.reset, (s) => decide.removeLockoutPolicy(s)),
  };
}
