import type { RecordedEvent } from "../events.ts";
import type { LockoutPolicy, PasswordComplexityPolicy } from "../policy.ts";
import { type ComplexityPayload, type LockoutPayload, lockoutOf, OrgPolicyEvent } from "./policy.ts";

// Instances and organizations are alike in what Latchkey needs of them: they are added once
// and hold administrators (members with roles). Event names follow ZITADEL:
// `instance.added`, `org.added`, `instance.member.added`, `org.member.removed`, ...
export type ResourceKind = "instance" | "org";

export const resourceEvent = (kind: ResourceKind) => ({
  added: `${kind}.added`,
  memberAdded: `${kind}.member.added`,
  memberRemoved: `${kind}.member.removed`,
  defaultOrgSet: `${kind}.default.org.set`,
});

export interface ResourceState {
  readonly kind: ResourceKind;
  readonly id: string;
  readonly sequence: number;
  readonly name: string;
  readonly members: Readonly<Record<string, readonly string[]>>;
  // Only instances have one: the organization new users land in when none is named.
  readonly defaultOrgId: string;
  // Only organizations have these, and only while they have their own; null: the instance's apply.
  readonly passwordComplexity: PasswordComplexityPolicy | null;
  readonly lockout: LockoutPolicy | null;
}

export const emptyResource = (kind: ResourceKind, id: string): ResourceState => ({
  kind,
  id,
  sequence: 0,
  name: "",
  members: {},
  defaultOrgId: "",
  passwordComplexity: null,
  lockout: null,
});

export function foldResource(state: ResourceState, events: readonly RecordedEvent[]): ResourceState {
  const names = resourceEvent(state.kind);
  let s = state;
  for (const e of events) {
    const p = (e.payload ?? {}) as { name?: string; userId?: string; roles?: string[]; orgId?: string };
    if (e.type === names.added) s = { ...s, name: p.name ?? "" };
    else if (e.type === names.defaultOrgSet) s = { ...s, defaultOrgId: p.orgId ?? "" };
    else if (e.type === names.memberAdded && p.userId)
      s = { ...s, members: { ...s.members, [p.userId]: p.roles ?? [] } };
    else if (e.type === OrgPolicyEvent.complexityAdded || e.type === OrgPolicyEvent.complexityChanged) {
      const c = e.payload as unknown as ComplexityPayload;
      s = {
        ...s,
        passwordComplexity: {
          minLength: c.minLength,
          hasUppercase: c.hasUppercase,
          hasLowercase: c.hasLowercase,
          hasNumber: c.hasNumber,
          hasSymbol: c.hasSymbol,
        },
      };
    } else if (e.type === OrgPolicyEvent.complexityRemoved) s = { ...s, passwordComplexity: null };
    else if (e.type === OrgPolicyEvent.lockoutAdded || e.type === OrgPolicyEvent.lockoutChanged)
      s = { ...s, lockout: lockoutOf(e.payload as unknown as LockoutPayload) };
    else if (e.type === OrgPolicyEvent.lockoutRemoved) s = { ...s, lockout: null };
    else if (e.type === names.memberRemoved && p.userId) {
      const { [p.userId]: _gone, ...rest } = s.members;
      s = { ...s, members: rest };
    }
    s = { ...s, sequence: e.sequence };
  }
  return s;
}
