import type { RecordedEvent } from "../domain/events.ts";
import type { ResourceState } from "../domain/resource/state.ts";
import { resourceEvent } from "../domain/resource/state.ts";
import type { SessionState } from "../domain/session/state.ts";
import { type PatAdded, type PatRemoved, UserEvent } from "../domain/user/events.ts";
import type { UserState } from "../domain/user/state.ts";
import type { ReadModelChange } from "./ports.ts";

// The users read model keeps these beside the state, copied out of it, so that SQL can search,
// sort and index by them (ListUsers); they must always agree with the state.
export interface UserSearchFields {
  readonly kind: string;
  readonly state: string;
  readonly email: string;
  readonly phone: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly nickName: string;
  readonly displayName: string;
  readonly createdAt: string;
}

export const userSearchFields = (u: UserState): UserSearchFields => ({
  kind: u.kind ?? "",
  // Snapshots from before user states lack the field: such a user is active.
  state: u.state ?? "active",
  email: u.email,
  phone: u.phone ?? "",
  givenName: u.profile?.givenName ?? "",
  familyName: u.profile?.familyName ?? "",
  nickName: u.profile?.nickName ?? "",
  displayName: u.profile?.displayName ?? "",
  createdAt: u.createdAt ?? "",
});

// What the read models must do after a user's new events, given the state they lead to.
export function projectUser(state: UserState, events: readonly RecordedEvent[]): ReadModelChange[] {
  const changes: ReadModelChange[] = [{ kind: "user.put", user: state }];
  for (const e of events) {
    if (e.type === UserEvent.patAdded) {
      const t = e.payload as unknown as PatAdded;
      changes.push({
        kind: "token.put",
        tokenId: t.tokenId,
        tokenHash: t.tokenHash,
        userId: state.id,
        expiresAt: t.expiresAt,
      });
    } else if (e.type === UserEvent.patRemoved) {
      changes.push({ kind: "token.delete", tokenId: (e.payload as unknown as PatRemoved).tokenId });
    } else if (e.type === UserEvent.removed) {
      changes.push({ kind: "token.deleteOfUser", userId: state.id });
      changes.push({ kind: "member.deleteOfUser", userId: state.id });
    }
  }
  return changes;
}

export function projectResource(
  state: ResourceState,
  events: readonly RecordedEvent[],
  instanceId: string,
): ReadModelChange[] {
  const names = resourceEvent(state.kind);
  const changes: ReadModelChange[] =
    state.kind === "org"
      ? [{ kind: "org.put", id: state.id, name: state.name, sequence: state.sequence }]
      : [{ kind: "instance.put", id: state.id, name: state.name, defaultOrgId: state.defaultOrgId }];
  for (const e of events) {
    const p = (e.payload ?? {}) as { userId?: string; roles?: string[] };
    if (!p.userId) continue;
    if (e.type === names.memberAdded) {
      const scope =
        state.kind === "org" ? { kind: "org" as const, orgId: state.id } : { kind: "instance" as const };
      changes.push({ kind: "member.put", userId: p.userId, membership: { scope, roles: p.roles ?? [] } });
    } else if (e.type === names.memberRemoved) {
      changes.push({
        kind: "member.delete",
        userId: p.userId,
        scopeId: state.kind === "org" ? state.id : instanceId,
      });
    }
  }
  return changes;
}

// A terminated session leaves the read model, so that its token finds nothing.
export function projectSession(state: SessionState): ReadModelChange[] {
  if (state.sequence === 0) return [];
  return state.terminated
    ? [{ kind: "session.delete", sessionId: state.id }]
    : [{ kind: "session.put", session: state }];
}
