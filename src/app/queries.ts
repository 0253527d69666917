import { invalid } from "../domain/errors.ts";
import { type Principal, scopeOf } from "../domain/permissions.ts";
import { requireUserId } from "../domain/user/decide.ts";
import type { UserState } from "../domain/user/state.ts";
import { authorizeOnUser, type Rule, requireAnywhere } from "./authorize.ts";
import type { AppDeps } from "./deps.ts";
import type { UserFilter, UserPage, UserSortField } from "./ports.ts";
import type { UserCommands } from "./users.ts";

// ZITADEL's AuthenticationMethodType numbers.
export const AuthMethod = { password: 1, otpSms: 6 } as const;

// ZITADEL's defaults: a list without a limit gets 100 entries, and more than 1000 is refused.
export const listLimits = { default: 100, max: 1000 } as const;

export interface UserListRequest {
  readonly filter: UserFilter;
  readonly sort: UserSortField;
  readonly ascending: boolean;
  readonly offset: number;
  // 0: the default.
  readonly limit: number;
}

// One entry of a user's history as the console shows it: what happened, when and by whom.
// Payloads stay out: some hold code hashes.
export interface UserEventEntry {
  readonly sequence: number;
  readonly type: string;
  readonly createdAt: Date;
  readonly creator: { readonly userId: string; readonly username: string | null };
}

// Reading a user: user.read on its organization, or being that user.
export const readRule = { permission: "user.read", self: true } as const satisfies Rule;

export function userQueries(deps: AppDeps, instanceId: string, users: UserCommands) {
  const readable = async (principal: Principal, userId: string): Promise<UserState> => {
    requireUserId(userId, "COMMAND-QSF2s");
    const user = await users.load(userId);
    authorizeOnUser(principal, readRule, user);
    return user;
  };

  return {
    getUser: readable,

    async authenticationMethods(principal: Principal, userId: string) {
      const user = await readable(principal, userId);
      const methods: number[] = [];
      if (user.passwordHash) methods.push(AuthMethod.password);
      if (user.otpSms) methods.push(AuthMethod.otpSms);
      return { user, methods };
    },

    // As in ZITADEL, a caller sees the users of the organizations where it holds user.read (all
    // of them with an instance role) and itself. Unlike ZITADEL, a caller holding user.read
    // nowhere is refused (403) rather than shown a list with only itself, as everywhere in Latchkey.
    async listUsers(principal: Principal, r: UserListRequest): Promise<UserPage> {
      if (r.limit > listLimits.max)
        throw invalid("QUERY-4M0fs", `Limit ${r.limit} exceeds the maximum of ${listLimits.max}`);
      requireAnywhere(principal, readRule.permission);
      const scope = scopeOf(principal, readRule.permission);
      return deps.store.searchUsers(instanceId, {
        filter: r.filter,
        sort: r.sort,
        ascending: r.ascending,
        offset: r.offset,
        limit: r.limit || listLimits.default,
        visible: "all" in scope ? { all: true } : { orgIds: scope.orgIds, userId: principal.userId },
      });
    },

    // Whoever may read the user may read its history. Creators are named by username even where
    // the caller may not read them: a help desk needs to know who removed a factor.
    async userEvents(principal: Principal, userId: string, limit: number): Promise<UserEventEntry[]> {
      await readable(principal, userId);
      const events = await deps.store.latestEvents(instanceId, { type: "user", id: userId }, limit);
      const names = new Map<string, string | null>();
      for (const id of new Set(events.map((e) => e.creator))) {
        const creator = id === "" ? null : await deps.store.getUser(instanceId, id);
        names.set(id, creator && creator.sequence > 0 ? creator.username : null);
      }
      return events.map((e) => ({
        sequence: e.sequence,
        type: e.type,
        createdAt: e.createdAt,
        creator: { userId: e.creator, username: names.get(e.creator) ?? null },
      }));
    },
  };
}
