import { notFound } from "../domain/errors.ts";
import type { AggregateRef, NewEvent, RecordedEvent } from "../domain/events.ts";
import { requireId } from "../domain/input.ts";
import type { Permission, Principal } from "../domain/permissions.ts";
import * as decideResource from "../domain/resource/decide.ts";
import {
  emptyResource,
  foldResource,
  type ResourceKind,
  type ResourceState,
} from "../domain/resource/state.ts";
import * as decideUser from "../domain/user/decide.ts";
import { foldUser, userExists } from "../domain/user/state.ts";
import { authorizeOnInstance, authorizeOnOrg, requireAnywhere } from "./authorize.ts";
import type { AppDeps } from "./deps.ts";
import { type Details, detailsOf } from "./details.ts";
import { newId } from "./ids.ts";
import { preparePassword } from "./passwords.ts";
import { codeDelivery, type PreparedPhone, pendingCode, preparePhone, returnedCode } from "./phone-codes.ts";
import type { AggregateWrite, OutboxChange, ReadModelChange } from "./ports.ts";
import { projectResource, projectUser } from "./projection.ts";
import { stamp, transact } from "./transact.ts";
import type { NewHumanRequest, UserCommands } from "./users.ts";

export type AdminScope = { readonly kind: "instance" } | { readonly kind: "org"; readonly orgId: string };

export interface NewOrganization {
  readonly name: string;
  readonly orgId?: string;
  readonly admins: readonly (
    | { readonly userId: string; readonly roles: readonly string[] }
    | { readonly human: NewHumanRequest; readonly roles: readonly string[] }
  )[];
}

// The permission each command needs, on the instance or on the organization it names.
export const resourceRules = {
  addOrganization: "org.create",
  instanceAdmins: "iam.member.write",
  orgAdmins: "org.member.write",
} as const satisfies Record<string, Permission>;

export function resourceCommands(deps: AppDeps, instanceId: string, users: UserCommands) {
  const refOf = (kind: ResourceKind, id: string): AggregateRef => ({ type: kind, id });

  async function load(kind: ResourceKind, id: string): Promise<ResourceState> {
    return foldResource(emptyResource(kind, id), await deps.store.loadEvents(instanceId, refOf(kind, id), 0));
  }

  // The owner of an instance's events is the instance itself; of an org's, the org.
  function writeResource(
    before: ResourceState,
    events: readonly NewEvent[],
    creator: string,
    now: Date,
  ): { write: AggregateWrite; readModel: ReadModelChange[]; stamped: RecordedEvent[] } {
    const ref = refOf(before.kind, before.id);
    const stamped = stamp(ref, before.id, creator, before.sequence, now, events);
    return {
      write: { ref, owner: before.id, expectedSequence: before.sequence, events },
      readModel: projectResource(foldResource(before, stamped), stamped, instanceId),
      stamped,
    };
  }

  async function scopeResource(principal: Principal, scope: AdminScope): Promise<ResourceState> {
    if (scope.kind === "instance") {
      authorizeOnInstance(principal, resourceRules.instanceAdmins);
      return load("instance", instanceId);
    }
    requireId(scope.orgId, "LK-ORG-MISSING", "Organization ID");
    requireAnywhere(principal, resourceRules.orgAdmins);
    const org = await load("org", scope.orgId);
    if (org.sequence === 0) throw notFound("ORG-EA2fc", `Organization ${scope.orgId} could not be found`);
    authorizeOnOrg(principal, resourceRules.orgAdmins, scope.orgId);
    return org;
  }

  return {
    load,

    async addOrganization(principal: Principal, r: NewOrganization) {
      authorizeOnInstance(principal, resourceRules.addOrganization);
      if (r.orgId) requireId(r.orgId, "ORG-4m9fs", "Organization ID");
      const orgId = r.orgId || newId();
      const humans = r.admins.map((a) => ("human" in a ? { id: a.human.userId || newId(), ...a } : null));
      // A new organization has no policies of its own yet: the instance's apply.
      const policy = deps.settings.defaultPolicies.passwordComplexity;
      const passwords = await Promise.all(
        r.admins.map((a) =>
          "human" in a && a.human.password ? preparePassword(deps, policy, a.human.password) : null,
        ),
      );
      let phones: (PreparedPhone | null)[] = [];
      const result = await transact(deps, instanceId, principal.userId, async (now) => {
        const org = await load("org", orgId);
        const orgEvents = [...decideResource.addResource(org, r.name).events];
        const writes: AggregateWrite[] = [];
        const readModel: ReadModelChange[] = [];
        const outbox: OutboxChange[] = [];
        phones = [];
        for (const [i, admin] of r.admins.entries()) {
          const roles = admin.roles.length > 0 ? admin.roles : ["ORG_OWNER"];
          const human = humans[i];
          let userId: string;
          if ("human" in admin && human) {
            userId = human.id;
            const h = admin.human;
            const phone = h.phone ? preparePhone(deps, h.phone, now) : null;
            phones.push(phone);
            const before = await users.load(userId);
            const d = decideUser.addHuman(before, {
              username: (h.username || h.email).trim(),
              profile: h.profile,
              email: h.email.trim(),
              emailVerified: h.emailVerified,
              phone: phone?.input ?? null,
              password: passwords[i] ?? null,
            });
            const ref: AggregateRef = { type: "user", id: userId };
            const stamped = stamp(ref, orgId, principal.userId, 0, now, d.events);
            writes.push({ ref, owner: orgId, expectedSequence: 0, events: d.events });
            readModel.push(...projectUser(foldUser(before, stamped), stamped));
            if (phone && h.phone)
              outbox.push(
                ...codeDelivery(
                  deps,
                  { id: userId, preferredLanguage: h.profile.preferredLanguage },
                  phone.input.phone,
                  pendingCode(phone),
                  h.phone.verification,
                  now,
                ),
              );
          } else {
            userId = requireId("userId" in admin ? admin.userId : "", "COMMAND-QSF2s");
            phones.push(null);
            if (!userExists(await users.load(userId)))
              throw notFound("COMMAND-4g3xq", `User ${userId} could not be found`);
          }
          const withMembers = foldResource(org, stamp(refOf("org", orgId), orgId, "", 0, now, orgEvents));
          orgEvents.push(...decideResource.addMember(withMembers, userId, roles).events);
        }
        const w = writeResource(org, orgEvents, principal.userId, now);
        return {
          writes: [w.write, ...writes],
          readModel: [...w.readModel, ...readModel],
          outbox,
          result: (recorded): Details => detailsOf(recorded.filter((e) => e.aggregateType === "org")),
        };
      });
      const created = [];
      for (const [i, admin] of r.admins.entries()) {
        const h = humans[i];
        const phone = phones[i];
        if (!h || !("human" in admin)) continue;
        const v = admin.human.phone?.verification;
        created.push({ userId: h.id, phoneCode: phone && v ? returnedCode(phone.code, v) : undefined });
      }
      return { orgId, details: result, createdAdmins: created };
    },

    async createAdministrator(
      principal: Principal,
      userId: string,
      scope: AdminScope,
      roles: readonly string[],
    ) {
      decideUser.requireUserId(userId, "COMMAND-QSF2s");
      return transact(deps, instanceId, principal.userId, async (now) => {
        const resource = await scopeResource(principal, scope);
        if (!userExists(await users.load(userId))) throw notFound("COMMAND-4g3xq", "User could not be found");
        const w = writeResource(
          resource,
          decideResource.addMember(resource, userId, roles).events,
          principal.userId,
          now,
        );
        return { writes: [w.write], readModel: w.readModel, result: () => now };
      });
    },

    async deleteAdministrator(principal: Principal, userId: string, scope: AdminScope) {
      decideUser.requireUserId(userId, "COMMAND-QSF2s");
      return transact(deps, instanceId, principal.userId, async (now) => {
        const resource = await scopeResource(principal, scope);
        const w = writeResource(
          resource,
          decideResource.removeMember(resource, userId).events,
          principal.userId,
          now,
        );
        return { writes: [w.write], readModel: w.readModel, result: () => now };
      });
    },
  };
}
