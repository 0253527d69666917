import { unauthenticated } from "../domain/errors.ts";
import type { Principal } from "../domain/permissions.ts";
import { userExists } from "../domain/user/state.ts";
import type { AppDeps } from "./deps.ts";
import { hashToken } from "./secrets.ts";

const invalidToken = () => unauthenticated("AUTH-7fs1e", "Token is invalid or expired");

// Turns an `Authorization` header into the caller. Only the token's hash is ever looked up.
export async function authenticate(
  deps: AppDeps,
  instanceId: string,
  header: string | undefined,
): Promise<Principal> {
  if (!header) throw unauthenticated("AUTH-x8ZdW", "auth header missing");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw unauthenticated("AUTH-W0ldU", "Authorization header must be 'Bearer <token>'");
  const token = await deps.store.findToken(instanceId, hashToken(match[1]));
  if (!token) throw invalidToken();
  if (token.expiresAt && new Date(token.expiresAt) <= deps.clock.now()) throw invalidToken();
  const user = await deps.store.getUser(instanceId, token.userId);
  if (!user || !userExists(user)) throw invalidToken();
  return {
    userId: user.id,
    orgId: user.orgId,
    memberships: await deps.store.membershipsOf(instanceId, user.id),
  };
}
