import { alreadyExists, invalid, notFound } from "../errors.ts";
import { type Decision, emit } from "../events.ts";
import { rules, text } from "../input.ts";
import { instanceRoles, orgRoles } from "../permissions.ts";
import { type ResourceKind, type ResourceState, resourceEvent } from "./state.ts";

export function addResource(s: ResourceState, name: string): Decision {
  if (s.sequence > 0) throw alreadyExists("LK-RES-EXISTS", `The ${s.kind} already exists`);
  return emit({ type: resourceEvent(s.kind).added, payload: { name: text(name, rules.orgName) } });
}

const allowedRoles = (kind: ResourceKind) => (kind === "instance" ? instanceRoles : orgRoles);

export function addMember(s: ResourceState, userId: string, roles: readonly string[]): Decision {
  if (s.sequence === 0) throw notFound("LK-RES-MISSING", `The ${s.kind} could not be found`);
  if (roles.length === 0) throw invalid("MEMBER-4m9ds", "At least one role is required");
  const unknown = roles.filter((r) => !allowedRoles(s.kind).includes(text(r, rules.role)));
  if (unknown.length > 0)
    throw invalid(
      "MEMBER-3m9ds",
      `Unknown roles for ${s.kind}: ${unknown.slice(0, 5).join(", ")}${unknown.length > 5 ? ", ..." : ""}`,
    );
  if (s.members[userId]) throw alreadyExists("MEMBER-ps2aS", "The user is already an administrator here");
  return emit({ type: resourceEvent(s.kind).memberAdded, payload: { userId, roles: [...new Set(roles)] } });
}

export function removeMember(s: ResourceState, userId: string): Decision {
  if (!s.members[userId]) throw notFound("MEMBER-Ak2ls", "The user is no administrator here");
  return emit({ type: resourceEvent(s.kind).memberRemoved, payload: { userId } });
}
