import { unauthenticated } from "../domain/errors.ts";
import type { Principal } from "../domain/permissions.ts";
import { authenticatesUser } from "../domain/session/decide.ts";
import { sessionActive } from "../domain/session/state.ts";
import { userExists } from "../domain/user/state.ts";
import type { AppDeps } from "./deps.ts";
import { hashToken, sessionIdOfToken, tokenMatches } from "./secrets.ts";

const invalidToken = () => unauthenticated("AUTH-7fs1e", "Token is invalid or expired");

// Turns an `Authorization` header into the caller: a personal access token, or the token of a
// session that has signed its user in (ZITADEL's login UI sends those). The token's form says
// which it is, so each costs one lookup by key; only hashes are looked up and compared.
export async function authenticate(
  deps: AppDeps,
  instanceId: string,
  header: string | undefined,
): Promise<Principal> {
  if (!header) throw unauthenticated("AUTH-x8ZdW", "auth header missing");
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw unauthenticated("AUTH-W0ldU", "Authorization header must be 'Bearer <token>'");
  const token = match[1];
  const sessionId = sessionIdOfToken(token);
  return sessionId === null
    ? fromPersonalAccessToken(deps, instanceId, token)
    : fromSession(deps, instanceId, sessionId, token);
}

// Every call is checked against the database as it is now (nothing is cached), so a removed
// token or user stops working at once on every node; one read answers it.
async function fromPersonalAccessToken(deps: AppDeps, instanceId: string, token: string): Promise<Principal> {
  const found = await deps.store.findTokenHolder(instanceId, hashToken(token));
  if (!found) throw invalidToken();
  const { expiresAt } = found.token;
  if (expiresAt && new Date(expiresAt) <= deps.clock.now()) throw invalidToken();
  const user = found.user;
  if (!user || !userExists(user)) throw invalidToken();
  return { userId: user.id, orgId: user.orgId, memberships: found.memberships };
}

// A terminated session has left the read model; an expired one, one whose user is locked or
// inactive, or one short of the user's factors does not authenticate either.
async function fromSession(
  deps: AppDeps,
  instanceId: string,
  sessionId: string,
  token: string,
): Promise<Principal> {
  const session = await deps.store.getSession(instanceId, sessionId);
  if (!session || !tokenMatches(token, session.tokenHash)) throw invalidToken();
  if (!sessionActive(session, deps.clock.now())) throw invalidToken();
  const user = session.userId ? await deps.store.getUser(instanceId, session.userId) : null;
  if (!user || !authenticatesUser(session, user)) throw invalidToken();
  return {
    userId: user.id,
    orgId: user.orgId,
    memberships: await deps.store.membershipsOf(instanceId, user.id),
    sessionId,
  };
}
