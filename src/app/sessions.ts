import { DomainError, denied, notFound } from "../domain/errors.ts";
import type { AggregateRef, RecordedEvent } from "../domain/events.ts";
import {
  holds,
  holdsAnywhere,
  holdsOnInstance,
  type Permission,
  type Principal,
  scopeOf,
} from "../domain/permissions.ts";
import { maxPasswordLength } from "../domain/policy.ts";
import { signInStep, terminateSession } from "../domain/session/decide.ts";
import type { UserAgent } from "../domain/session/events.ts";
import { emptySession, foldSession, type SessionState, sessionExists } from "../domain/session/state.ts";
import { requireUserId } from "../domain/user/decide.ts";
import { foldUser, type UserState, userExists } from "../domain/user/state.ts";
import { requireAnywhere } from "./authorize.ts";
import type { AppDeps } from "./deps.ts";
import { type Details, detailsOf } from "./details.ts";
import { newId } from "./ids.ts";
import { orgPolicies } from "./policies.ts";
import type { AggregateWrite, ReadModelChange, SessionQuery } from "./ports.ts";
import { projectSession, projectUser } from "./projection.ts";
import { codeMatches, hashCode, hashToken, newCode, newSessionToken, tokenMatches } from "./secrets.ts";
import { codeSms } from "./sms-outbox.ts";
import { stamp, transact } from "./transact.ts";
import type { UserCommands } from "./users.ts";

export type UserSearch = { readonly userId: string } | { readonly loginName: string };

// The checks and challenges of one CreateSession or SetSession, as the API's messages say.
export interface SessionRequest {
  readonly user?: UserSearch | undefined;
  readonly password?: string | undefined;
  readonly otpSms?: string | undefined;
  readonly otpSmsChallenge?: { readonly returnCode: boolean } | undefined;
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  readonly lifetimeMs?: number | undefined;
  readonly userAgent?: UserAgent | null | undefined;
}

export interface SessionChanged {
  readonly sessionId: string;
  readonly sessionToken: string;
  readonly details: Details;
  // The OTP SMS code, only when the caller asked for it to be returned instead of sent.
  readonly otpSmsCode?: string | undefined;
}

export type SessionListQuery = Omit<SessionQuery, "visibleTo">;

const digits = "0123456789";
const otpLength = 8;

const invalidToken = () => denied("COMMAND-sGr42", "Session token is invalid");
const sessionMissing = () => notFound("QUERY-SFeaa", "Session could not be found");

// The permission each session command needs: to start or change one anywhere; to read or end
// one, for its user's organization (the instance's, for a session without a user yet), unless
// the caller presents its token or is its user (or, to read it, created it). The authorization
// matrix test reads this table too.
export const sessionRules = {
  write: "session.write",
  read: "session.read",
  delete: "session.delete",
} as const satisfies Record<string, Permission>;

export type SessionCommands = ReturnType<typeof sessionCommands>;

export function sessionCommands(deps: AppDeps, instanceId: string, users: UserCommands) {
  const ref = (id: string): AggregateRef => ({ type: "session", id });

  async function load(sessionId: string): Promise<SessionState> {
    const snapshot = (await deps.store.getSession(instanceId, sessionId)) ?? emptySession(sessionId);
    const tail = await deps.store.loadEvents(instanceId, ref(sessionId), snapshot.sequence);
    return tail.length > 0 ? foldSession(snapshot, tail) : snapshot;
  }

  async function findUser(search: UserSearch): Promise<string> {
    if ("userId" in search) {
      requireUserId(search.userId, "COMMAND-QSF2s");
      return search.userId;
    }
    const id =
      search.loginName.trim() === ""
        ? null
        : await deps.store.userIdByLoginName(instanceId, search.loginName);
    if (!id) throw notFound("QUERY-Dfbg2", "User could not be found");
    return id;
  }

  // Verifies off the event loop; a right password whose stored hash is bcrypt or of other
  // argon2id costs is hashed again, so that imported users move to the configured argon2id.
  async function checkedPassword(user: UserState | null, password: string) {
    if (!user?.passwordHash) return { matches: false };
    const matches = await deps.passwords.verify(user.passwordHash, password);
    const rehashed =
      matches && deps.passwords.needsRehash(user.passwordHash)
        ? await deps.passwords.hash(password)
        : undefined;
    return { matches, rehashed };
  }

  // A session without a user yet is the instance's; one with a user, its organization's.
  const mayOn = (principal: Principal, permission: Permission, s: SessionState) =>
    s.userOrgId !== "" ? holds(principal, permission, s.userOrgId) : holdsOnInstance(principal, permission);

  async function step(
    principal: Principal,
    sessionId: string,
    create: boolean,
    r: SessionRequest,
    presentedToken?: string,
  ): Promise<SessionChanged> {
    requireAnywhere(principal, sessionRules.write);
    if (r.password !== undefined && [...r.password].length > maxPasswordLength)
      throw new DomainError("invalid_argument", "LK-PW-LONG", "Password is too long");
    const checkUserId = r.user ? await findUser(r.user) : undefined;
    let returnedCode: string | undefined;
    let token = "";
    const result = await transact(deps, instanceId, principal.userId, async (now) => {
      const before = create ? emptySession(sessionId) : await load(sessionId);
      if (!create && presentedToken && !tokenMatches(presentedToken, before.tokenHash)) throw invalidToken();
      const checkUser = checkUserId ? await users.load(checkUserId) : undefined;
      if (checkUser && !userExists(checkUser)) throw notFound("QUERY-Dfbg2", "User could not be found");
      const userId = checkUser?.id ?? before.userId;
      const user: UserState | null = checkUser ?? (userId ? await users.load(userId) : null);
      const password = r.password === undefined ? undefined : await checkedPassword(user, r.password);
      const { lockout } = await orgPolicies(deps, instanceId, user?.orgId ?? "");
      const code = r.otpSmsChallenge ? newCode(otpLength, digits) : null;
      const codeExpiresAt = new Date(now.getTime() + deps.settings.otpSmsTtlMs);
      token = newSessionToken(sessionId);
      const decision = signInStep(before, {
        now,
        ...(create ? { start: { userAgent: r.userAgent ?? null } } : {}),
        ...(checkUser ? { checkUser } : {}),
        user,
        ...(password ? { password } : {}),
        ...(r.otpSms !== undefined
          ? { otpSms: { matches: (h: string) => codeMatches(r.otpSms ?? "", h) } }
          : {}),
        ...(code && r.otpSmsChallenge
          ? {
              otpSmsChallenge: {
                hash: hashCode(code),
                expiresAt: codeExpiresAt,
                returned: r.otpSmsChallenge.returnCode,
              },
            }
          : {}),
        ...(r.metadata ? { metadata: r.metadata } : {}),
        ...(r.lifetimeMs !== undefined ? { lifetimeMs: r.lifetimeMs } : {}),
        tokenHash: hashToken(token),
        lockout,
      });
      // The code leaves through the SMS outbox, stored with the challenge that issues it; or it
      // goes back to the caller who asked for it instead.
      const send = code !== null && r.otpSmsChallenge?.returnCode === false && decision.error === undefined;
      returnedCode = code !== null && r.otpSmsChallenge?.returnCode ? code : undefined;
      const outbox =
        send && user?.phone && decision.session.length > 0
          ? [
              codeSms(
                deps,
                { id: user.id, preferredLanguage: user.profile?.preferredLanguage },
                user.phone,
                { code, expiresAt: codeExpiresAt, type: "otp" },
                now,
              ),
            ]
          : [];
      const writes: AggregateWrite[] = [];
      const readModel: ReadModelChange[] = [];
      if (decision.session.length > 0) {
        const stamped = stamp(
          ref(sessionId),
          instanceId,
          principal.userId,
          before.sequence,
          now,
          decision.session,
        );
        writes.push({
          ref: ref(sessionId),
          owner: instanceId,
          expectedSequence: before.sequence,
          events: decision.session,
        });
        readModel.push(...projectSession(foldSession(before, stamped)));
      }
      if (user && decision.user.length > 0) {
        const userRef: AggregateRef = { type: "user", id: user.id };
        const stamped = stamp(userRef, user.orgId, principal.userId, user.sequence, now, decision.user);
        writes.push({
          ref: userRef,
          owner: user.orgId,
          expectedSequence: user.sequence,
          events: decision.user,
        });
        readModel.push(...projectUser(foldUser(user, stamped), stamped));
      }
      const fallback = { sequence: before.sequence, changeDate: now, resourceOwner: instanceId };
      return {
        writes,
        readModel,
        outbox,
        error: decision.error,
        result: (recorded: readonly RecordedEvent[]) => ({
          details: detailsOf(
            recorded.filter((e) => e.aggregateType === "session"),
            fallback,
          ),
          changed: decision.session.length > 0,
        }),
      };
    });
    return {
      sessionId,
      sessionToken: result.changed ? token : (presentedToken ?? ""),
      details: result.details,
      otpSmsCode: returnedCode,
    };
  }

  return {
    load,

    create(principal: Principal, r: SessionRequest): Promise<SessionChanged> {
      return step(principal, newId(), true, r);
    },

    set(principal: Principal, sessionId: string, r: SessionRequest, presentedToken?: string) {
      requireSessionId(sessionId);
      return step(principal, sessionId, false, r, presentedToken || undefined);
    },

    // A session is readable with its token, by its user and its creator, and by holders of
    // session.read for its organization. Whoever holds none of these learns nothing about it.
    async get(principal: Principal, sessionId: string, presentedToken?: string): Promise<SessionState> {
      requireSessionId(sessionId);
      const s = await deps.store.getSession(instanceId, sessionId);
      if (!s) {
        if (presentedToken || holdsAnywhere(principal, sessionRules.read)) throw sessionMissing();
        throw denied("AUTH-AWfge", "No matching permissions found");
      }
      if (presentedToken) {
        if (!tokenMatches(presentedToken, s.tokenHash)) throw invalidToken();
        return s;
      }
      if (s.userId === principal.userId || s.creator === principal.userId) return s;
      if (!mayOn(principal, sessionRules.read, s))
        throw denied("AUTH-AWfge", "No matching permissions found");
      return s;
    },

    // The sessions GetSession would show: holders of session.read on the instance see every
    // one; everyone else the ones they created, their own, and those of users in the
    // organizations where they hold session.read.
    list(principal: Principal, q: SessionListQuery) {
      const scope = scopeOf(principal, sessionRules.read);
      const visibleTo = "all" in scope ? null : { userId: principal.userId, orgIds: scope.orgIds };
      return deps.store.listSessions(instanceId, { ...q, visibleTo });
    },

    // Ends a session: with its token, as its user, or with session.delete for its organization.
    // Ending an ended session changes nothing.
    async delete(principal: Principal, sessionId: string, presentedToken?: string): Promise<Details> {
      requireSessionId(sessionId);
      return transact(deps, instanceId, principal.userId, async (now) => {
        const s = await load(sessionId);
        if (!sessionExists(s)) {
          if (presentedToken || holdsAnywhere(principal, sessionRules.delete)) throw sessionMissing();
          throw denied("AUTH-AWfge", "No matching permissions found");
        }
        if (presentedToken) {
          if (!tokenMatches(presentedToken, s.tokenHash)) throw invalidToken();
        } else if (s.userId !== principal.userId && !mayOn(principal, sessionRules.delete, s)) {
          throw denied("AUTH-AWfge", "No matching permissions found");
        }
        const events = terminateSession(s);
        const stamped = stamp(ref(sessionId), instanceId, principal.userId, s.sequence, now, events);
        const fallback = {
          sequence: s.sequence,
          changeDate: new Date(s.changedAt ?? now),
          resourceOwner: instanceId,
        };
        return {
          writes: [{ ref: ref(sessionId), owner: instanceId, expectedSequence: s.sequence, events }],
          readModel: events.length > 0 ? projectSession(foldSession(s, stamped)) : [],
          result: (recorded: readonly RecordedEvent[]) => detailsOf(recorded, fallback),
        };
      });
    },
  };
}

function requireSessionId(sessionId: string): void {
  if (sessionId.trim() === "")
    throw new DomainError("invalid_argument", "LK-SESSION-ID", "Session ID is missing");
  if (sessionId.length > 200)
    throw new DomainError("invalid_argument", "LK-ID200", "Session ID must be at most 200 characters");
}
