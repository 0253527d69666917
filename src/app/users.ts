import { DomainError, invalid, notFound, precondition } from "../domain/errors.ts";
import type { AggregateRef, Decision } from "../domain/events.ts";
import { requireId, text, rules as textRules } from "../domain/input.ts";
import type { Principal } from "../domain/permissions.ts";
import { maxPasswordLength } from "../domain/policy.ts";
import { terminateSession } from "../domain/session/decide.ts";
import { foldSession, type SessionState } from "../domain/session/state.ts";
import * as decide from "../domain/user/decide.ts";
import { type Profile, UserEvent } from "../domain/user/events.ts";
import { emptyUser, foldUser, type UserState } from "../domain/user/state.ts";
import { authorizeOnOrg, authorizeOnUser, type Rule, requireAnywhere } from "./authorize.ts";
import type { AppDeps } from "./deps.ts";
import { type Details, detailsOf } from "./details.ts";
import { newId } from "./ids.ts";
import { type PasswordRequest, preparePassword } from "./passwords.ts";
import {
  codeDelivery,
  issueCode,
  type PhoneRequest,
  type PhoneVerification,
  pendingCode,
  preparePhone,
  returnedCode,
} from "./phone-codes.ts";
import { orgPolicies } from "./policies.ts";
import type { AggregateWrite, ClaimedMessage, OutboxChange, ReadModelChange } from "./ports.ts";
import { projectSession, projectUser } from "./projection.ts";
import { codeMatches, hashCode, hashToken, newCode, newToken } from "./secrets.ts";
import { removalNotices, type SmsOutcome, smsOutcome } from "./sms-outbox.ts";
import { stamp, transact } from "./transact.ts";

export interface NewHumanRequest {
  readonly userId?: string | undefined;
  readonly orgId?: string | undefined;
  readonly username?: string | undefined;
  readonly profile: Profile;
  readonly email: string;
  readonly emailVerified: boolean;
  readonly phone?: PhoneRequest;
  readonly password?: PasswordRequest | undefined;
}

// How SetPassword proves the change may happen: an administrator needs nothing more; anyone
// else the current password or a reset code.
export type PasswordVerification =
  | { readonly kind: "none" }
  | { readonly kind: "current"; readonly password: string }
  | { readonly kind: "code"; readonly code: string };

export interface NewMachineRequest {
  readonly userId?: string | undefined;
  readonly orgId: string;
  readonly username?: string | undefined;
  readonly name: string;
  readonly description: string;
}

// ZITADEL's creator for what its notification worker writes.
const notificationCreator = "NOTIFICATION";

// A decision with the SMS it calls for (beyond the removal notices every change gets).
type WithSms = Decision & { readonly sms?: readonly OutboxChange[] };

// Who may run each command, checked against the user's organization; the authorization matrix
// test (test/authz-matrix.test.ts) derives its expectations from this table.
export const userRules = {
  create: { permission: "user.write", self: false },
  addOtpSms: { permission: "user.credential.write", self: true },
  removeOtpSms: { permission: "user.write", self: true },
  phone: { permission: "user.write", self: true },
  delete: { permission: "user.delete", self: true },
  tokens: { permission: "user.write", self: false },
  state: { permission: "user.write", self: false },
  adminPassword: { permission: "user.write", self: false },
  ownPassword: { permission: "user.write", self: true },
} as const satisfies Record<string, Rule>;
const rules = userRules;

export type UserCommands = ReturnType<typeof userCommands>;

export function userCommands(deps: AppDeps, instanceId: string) {
  const ref = (id: string): AggregateRef => ({ type: "user", id });

  const policiesFor = (orgId: string) => orgPolicies(deps, instanceId, orgId);

  // The read model row is the snapshot; events written after it (none, normally) are folded on.
  async function load(userId: string): Promise<UserState> {
    const { snapshot, tail } = await deps.store.loadUser(instanceId, userId);
    const state = snapshot ?? emptyUser(userId);
    return tail.length > 0 ? foldUser(state, tail) : state;
  }

  // Load, authorize, decide, append (with the SMS the events call for); again on a lost race.
  // A command whose purpose is to end a factor reads the user's sessions together with the user
  // rather than after it: on PostgreSQL the two reads then share one round trip.
  function change(
    principal: Principal,
    userId: string,
    rule: Rule,
    decideOn: (s: UserState, now: Date) => WithSms,
    endsFactor = false,
  ): Promise<Details> {
    return transact(deps, instanceId, principal.userId, async (now) => {
      const sessionsRead =
        endsFactor && deps.settings.endSessionsOnFactorRemoval
          ? deps.store.sessionsOfUser(instanceId, userId)
          : undefined;
      // Whatever the load throws comes first; a failed sessions read is then not left unhandled.
      sessionsRead?.catch(() => {});
      const before = await load(userId);
      authorizeOnUser(principal, rule, before);
      const decision = decideOn(before, now);
      const outbox = [...(decision.sms ?? []), ...removalNotices(deps, before, decision.events, now)];
      const events = stamp(
        ref(userId),
        before.orgId,
        principal.userId,
        before.sequence,
        now,
        decision.events,
      );
      const after = foldUser(before, events);
      const fallback = { sequence: before.sequence, changeDate: now, resourceOwner: before.orgId };
      const ended = decision.events.some((e) => e.type === UserEvent.otpSmsRemoved)
        ? await endOtherSessions(principal, userId, now, await sessionsRead)
        : { writes: [], readModel: [] };
      return {
        writes: [
          {
            ref: ref(userId),
            owner: before.orgId,
            expectedSequence: before.sequence,
            events: decision.events,
          },
          ...ended.writes,
        ],
        readModel: [...projectUser(after, events), ...ended.readModel],
        outbox,
        error: decision.error,
        result: (recorded) =>
          detailsOf(
            recorded.filter((e) => e.aggregateType === "user"),
            fallback,
          ),
      };
    });
  }

  const recipient = (s: UserState) => ({ id: s.id, preferredLanguage: s.profile?.preferredLanguage });
  // When a second factor goes, the user's other sessions end with it (a setting, on by
  // default): whoever signed in with the factor is signed out. The session making the call,
  // if it is one of the user's, stays.
  async function endOtherSessions(
    principal: Principal,
    userId: string,
    now: Date,
    alreadyRead?: readonly SessionState[],
  ): Promise<{ writes: AggregateWrite[]; readModel: ReadModelChange[] }> {
    const writes: AggregateWrite[] = [];
    const readModel: ReadModelChange[] = [];
    if (!deps.settings.endSessionsOnFactorRemoval) return { writes, readModel };
    for (const s of alreadyRead ?? (await deps.store.sessionsOfUser(instanceId, userId))) {
      if (s.id === principal.sessionId) continue;
      const events = terminateSession(s);
      if (events.length === 0) continue;
      const sessionRef: AggregateRef = { type: "session", id: s.id };
      writes.push({ ref: sessionRef, owner: instanceId, expectedSequence: s.sequence, events });
      const stamped = stamp(sessionRef, instanceId, principal.userId, s.sequence, now, events);
      readModel.push(...projectSession(foldSession(s, stamped)));
    }
    return { writes, readModel };
  }

  // Who may choose how a phone gets verified: only holders of user.write may mark a number
  // verified or take the code themselves, even for their own user (as in ZITADEL).
  function checkVerificationChoice(principal: Principal, user: UserState, v: PhoneVerification) {
    if (v === "send") return;
    authorizeOnUser(principal, { permission: "user.write", self: false }, user);
  }

  async function resolveOrg(principal: Principal, orgId: string | undefined): Promise<string> {
    const id = requireId(orgId || principal.orgId, "LK-ORG-MISSING", "Organization ID");
    requireAnywhere(principal, rules.create.permission);
    if (!(await deps.store.getOrg(instanceId, id)))
      throw notFound("ORG-EA2fc", `Organization ${id} could not be found`);
    authorizeOnOrg(principal, rules.create.permission, id);
    return id;
  }

  // `requestedId` is the caller's choice, or "" to let the server draw one.
  async function create(
    principal: Principal,
    requestedId: string,
    orgId: string,
    decideOn: (s: UserState, now: Date) => WithSms,
  ): Promise<{ userId: string; details: Details; created: Date }> {
    let userId = requestedId || deps.newId();
    return transact(deps, instanceId, principal.userId, async (now) => {
      let before = await load(userId);
      // Another node may, rarely, draw the same id in the same millisecond. The caller named no
      // id, so it must not hear that "the user already exists": draw again instead.
      while (!requestedId && before.sequence > 0) {
        userId = deps.newId();
        before = await load(userId);
      }
      const decision = decideOn(before, now);
      const events = stamp(ref(userId), orgId, principal.userId, 0, now, decision.events);
      return {
        writes: [{ ref: ref(userId), owner: orgId, expectedSequence: 0, events: decision.events }],
        readModel: projectUser(foldUser(before, events), events),
        outbox: decision.sms ?? [],
        result: (recorded) => ({ userId, details: detailsOf(recorded), created: now }),
      };
    });
  }

  return {
    load,

    async addHuman(principal: Principal, r: NewHumanRequest) {
      if (r.userId !== undefined && r.userId !== "") decide.requireUserId(r.userId, "COMMAND-QSF2s");
      const orgId = await resolveOrg(principal, r.orgId);
      if (r.phone && r.phone.verification !== "send") requireAnywhere(principal, "user.write");
      const now = deps.clock.now();
      const phone = r.phone ? preparePhone(deps, r.phone, now) : null;
      const password = r.password
        ? await preparePassword(deps, (await policiesFor(orgId)).passwordComplexity, r.password)
        : null;
      const username = (r.username || r.email).trim();
      const verification = r.phone?.verification ?? "verified";
      const created = await create(principal, r.userId ?? "", orgId, (s, at) => ({
        ...decide.addHuman(s, {
          username,
          profile: r.profile,
          email: r.email.trim(),
          emailVerified: r.emailVerified,
          phone: phone?.input ?? null,
          password,
        }),
        sms: phone
          ? codeDelivery(
              deps,
              { id: s.id, preferredLanguage: r.profile.preferredLanguage },
              phone.input.phone,
              pendingCode(phone),
              verification,
              at,
            )
          : [],
      }));
      return { ...created, phoneCode: phone ? returnedCode(phone.code, verification) : undefined };
    },

    async addMachine(principal: Principal, r: NewMachineRequest) {
      if (r.userId !== undefined && r.userId !== "") decide.requireUserId(r.userId, "COMMAND-QSF2s");
      if (r.orgId === "") throw invalid("LK-ORG-MISSING", "Organization ID is required");
      const orgId = await resolveOrg(principal, r.orgId);
      return create(principal, r.userId ?? "", orgId, (s) =>
        decide.addMachine(s, {
          username: r.username?.trim() || s.id,
          name: r.name,
          description: r.description,
        }),
      );
    },

    deleteUser(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-2M0ds");
      return change(principal, userId, rules.delete, (s) => decide.removeUser(s));
    },

    async setPhone(principal: Principal, userId: string, request: PhoneRequest) {
      decide.requireUserId(userId, "COMMAND-xP292j");
      let code: string | null = null;
      const d = await change(principal, userId, rules.phone, (s, now) => {
        checkVerificationChoice(principal, s, request.verification);
        const p = preparePhone(deps, request, now);
        code = p.code;
        return {
          ...decide.setPhone(s, p.input),
          sms: codeDelivery(deps, recipient(s), p.input.phone, pendingCode(p), request.verification, now),
        };
      });
      return { details: d, code: returnedCode(code, request.verification) };
    },

    async resendPhoneCode(principal: Principal, userId: string, verification: "send" | "return") {
      decide.requireUserId(userId, "COMMAND-xP292j");
      let code: string | null = null;
      const d = await change(principal, userId, rules.phone, (s, now) => {
        checkVerificationChoice(principal, s, verification);
        const fresh = issueCode(deps, verification, now);
        code = fresh.code;
        const pending = { code: fresh.code, expiresAt: fresh.issued.expiresAt };
        return {
          ...decide.resendPhoneCode(s, fresh.issued),
          sms: codeDelivery(deps, recipient(s), s.phone ?? "", pending, verification, now),
        };
      });
      return { details: d, code: returnedCode(code, verification) };
    },

    verifyPhone(principal: Principal, userId: string, code: string) {
      decide.requireUserId(userId, "COMMAND-xP292j");
      text(code, textRules.verificationCode);
      return change(principal, userId, rules.phone, (s, now) =>
        decide.verifyPhone(s, { matches: (hash) => codeMatches(code, hash), now }),
      );
    },

    removePhone(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-xP292j");
      return change(principal, userId, rules.phone, (s) => decide.removePhone(s));
    },

    addOtpSms(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-QSF2s");
      return change(principal, userId, rules.addOtpSms, (s) => decide.addOtpSms(s));
    },

    removeOtpSms(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-S3br2");
      return change(principal, userId, rules.removeOtpSms, (s) => decide.removeOtpSms(s), true);
    },

    // What became of an SMS to this user: the event on the user and the settled outbox row,
    // in one append. Written by the notification worker, not by a caller.
    recordSms(m: ClaimedMessage, outcome: SmsOutcome): Promise<void> {
      return transact(
        deps,
        instanceId,
        notificationCreator,
        async (now) => {
          const before = await load(m.userId);
          const { decision, settle } = smsOutcome(before, m, outcome);
          const events = stamp(
            ref(m.userId),
            before.orgId,
            notificationCreator,
            before.sequence,
            now,
            decision.events,
          );
          const writes =
            decision.events.length > 0
              ? [
                  {
                    ref: ref(m.userId),
                    owner: before.orgId,
                    expectedSequence: before.sequence,
                    events: decision.events,
                  },
                ]
              : [];
          return {
            writes,
            readModel: writes.length > 0 ? projectUser(foldUser(before, events), events) : [],
            outbox: [settle],
            result: () => undefined,
          };
        },
        { background: true },
      );
    },

    async addPersonalAccessToken(principal: Principal, userId: string, expiresAt: Date | null) {
      decide.requireUserId(userId, "COMMAND-QSF2s");
      const token = newToken();
      const tokenId = newId();
      let created = new Date(0);
      await change(principal, userId, rules.tokens, (s, now) => {
        created = now;
        return decide.addPersonalAccessToken(s, { tokenId, tokenHash: hashToken(token), expiresAt, now });
      });
      return { tokenId, token, created };
    },

    async removePersonalAccessToken(principal: Principal, userId: string, tokenId: string) {
      decide.requireUserId(userId, "COMMAND-QSF2s");
      requireId(tokenId, "COMMAND-SAfd2", "Token ID");
      const d = await change(principal, userId, rules.tokens, (s) =>
        decide.removePersonalAccessToken(s, tokenId),
      );
      return d.changeDate;
    },

    // SetPassword: an administrator sets any password; a user changes their own with the
    // current one; a reset code lets whoever holds it choose a new one.
    async setPassword(
      principal: Principal,
      userId: string,
      password: { readonly password: string; readonly changeRequired: boolean },
      verification: PasswordVerification,
    ) {
      decide.requireUserId(userId, "COMMAND-3M0fs");
      const rule = verification.kind === "none" ? rules.adminPassword : rules.ownPassword;
      const user = await load(userId);
      authorizeOnUser(principal, rule, user);
      if (verification.kind === "current") {
        if ([...verification.password].length > maxPasswordLength)
          throw new DomainError("invalid_argument", "COMMAND-3M0fs", "Password is invalid");
        if (!user.passwordHash) throw precondition("COMMAND-Fds3s", "User has no password");
        if (!(await deps.passwords.verify(user.passwordHash, verification.password)))
          throw invalid("COMMAND-3M0fs", "Password is invalid");
      }
      const input = await preparePassword(deps, (await policiesFor(user.orgId)).passwordComplexity, password);
      return change(principal, userId, rule, (s, now) =>
        verification.kind === "code"
          ? decide.setPasswordWithCode(s, { matches: (h) => codeMatches(verification.code, h), now }, input)
          : decide.setPassword(s, input),
      );
    },

    // PasswordReset with return_code: the code comes back to the caller instead of a message.
    async passwordReset(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-M00oL");
      const code = newCode();
      const details = await change(principal, userId, rules.adminPassword, (s, now) =>
        decide.requestPasswordReset(s, {
          hash: hashCode(code),
          expiresAt: new Date(now.getTime() + deps.settings.passwordResetTtlMs),
          returned: true,
        }),
      );
      return { details, code };
    },

    lockUser(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-2M0sd");
      return change(principal, userId, rules.state, (s) => decide.lockUser(s));
    },

    unlockUser(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-M0dse");
      return change(principal, userId, rules.state, (s) => decide.unlockUser(s));
    },

    deactivateUser(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-m0gDf");
      return change(principal, userId, rules.state, (s) => decide.deactivateUser(s));
    },

    reactivateUser(principal: Principal, userId: string) {
      decide.requireUserId(userId, "COMMAND-4M9ds");
      return change(principal, userId, rules.state, (s) => decide.reactivateUser(s));
    },
  };
}
