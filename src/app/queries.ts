import type { Principal } from "../domain/permissions.ts";
import { requireUserId } from "../domain/user/decide.ts";
import type { UserState } from "../domain/user/state.ts";
import { authorizeOnUser } from "./authorize.ts";
import type { UserCommands } from "./users.ts";

// ZITADEL's AuthenticationMethodType numbers.
export const AuthMethod = { password: 1, otpSms: 6 } as const;

export function userQueries(users: UserCommands) {
  const readable = async (principal: Principal, userId: string): Promise<UserState> => {
    requireUserId(userId, "COMMAND-QSF2s");
    const user = await users.load(userId);
    authorizeOnUser(principal, { permission: "user.read", self: true }, user);
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
  };
}
