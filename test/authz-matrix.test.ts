import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DescMethod } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { InternalPermissionService } from "@zitadel/proto/zitadel/internal_permission/v2beta/internal_permission_service_pb.js";
import { ManagementService } from "@zitadel/proto/zitadel/management_pb.js";
import { OrganizationService } from "@zitadel/proto/zitadel/org/v2/org_service_pb.js";
import { SessionService } from "@zitadel/proto/zitadel/session/v2/session_service_pb.js";
import { SettingsService } from "@zitadel/proto/zitadel/settings/v2/settings_service_pb.js";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { methodOptions, servedServices } from "../src/api/services.ts";
import { policyRules } from "../src/app/policies.ts";
import { readRule } from "../src/app/queries.ts";
import { resourceRules } from "../src/app/resources.ts";
import { sessionRules } from "../src/app/sessions.ts";
import { userRules } from "../src/app/users.ts";
import { instanceRoles, orgRoles, type Permission, rolePermissions } from "../src/domain/permissions.ts";
import { type Clients, clients, type Protocol, protocols } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser, newOrg } from "./support/fixtures.ts";
import { implementedMethods } from "./support/fuzz.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

// Every implemented method x every kind of caller x every kind of target, with the expected
// answer computed from the permission table (domain/permissions.ts) and each command's rule
// (userRules, readRule, resourceRules, sessionRules, policyRules): nothing here is a hand-written
// expectation of who may do what. Hand-written is only what the domain answers once
// authorization has let a caller through, where that is not success: the column of a caller
// acting on itself (a machine user, as only machines hold personal access tokens, for the methods
// on users; a person signed in with a session token for the methods on sessions), and SetSession
// on a session that does not exist (FailedPrecondition, ZITADEL's COMMAND-Flk38).

type Membership = { readonly scope: "instance" | string; readonly role: string };

interface Caller {
  readonly kind: string;
  readonly token: string;
  readonly valid: boolean;
  readonly userId: string;
  readonly memberships: readonly Membership[];
}

const grants = (m: Membership, p: Permission) => rolePermissions(m.role).includes(p);
const holdsIn = (c: Caller, p: Permission, orgId: string) =>
  c.memberships.some((m) => (m.scope === "instance" || m.scope === orgId) && grants(m, p));
const holdsOnInstance = (c: Caller, p: Permission) =>
  c.memberships.some((m) => m.scope === "instance" && grants(m, p));
const holdsAnywhere = (c: Caller, p: Permission) => c.memberships.some((m) => grants(m, p));

// A user, an organization or a session (of a user) in an organization, or the instance (for a
// session: one without a user yet).
type Target =
  | { readonly kind: "org"; readonly label: string; readonly orgId: string; readonly exists: boolean }
  | { readonly kind: "instance"; readonly label: string };

type Request = Record<string, unknown>;

interface MethodSpec {
  readonly method: DescMethod;
  // Tells apart two requests of one method that need different rules (SetPassword).
  readonly variant?: string;
  // What the call acts on: a user, an organization, the instance, an administrator's scope
  // (organization or instance), a session, or a list (of users or sessions) where each target
  // is a row that is shown or left out.
  readonly on: "user" | "org" | "instance" | "scope" | "session" | "list";
  readonly permission: Permission;
  readonly self?: boolean;
  // Holding the permission anywhere is enough, whatever organization the target is in.
  readonly anywhere?: boolean;
  // Also the instance (or a session without a user) as a target.
  readonly instanceTarget?: boolean;
  // What a caller holding the permission gets for a target that does not exist (NotFound).
  readonly missing?: Code;
  // For a list: a caller holding the permission nowhere is refused rather than shown less, and
  // the rows shown are those of organizations where it holds it ("org") or all of them with it
  // on the instance ("instance"), besides its own.
  readonly list?: { readonly refuses: boolean; readonly scope: "org" | "instance" };
  // A request that succeeds once authorized; the target made ready for it by the admin.
  prepare(admin: Clients, target: Target): Promise<Request>;
  call(c: Clients, req: Request): Promise<unknown>;
  // For a list: whether the target's row is in the answer.
  shown?(res: unknown, req: Request): boolean;
  // For a rule with self: the domain's answer to an authorized caller acting on itself.
  readonly selfAnswer?: Code;
  // The request of a caller acting on itself (else the one prepared for a missing target, on
  // the caller).
  selfRequest?(admin: Clients, selfId: string): Promise<Request>;
}

const userMethod = UserService.method;
const sessionMethod = SessionService.method;
const mgmt = ManagementService.method;
const settingsMethod = SettingsService.method;
// Success, which Connect's Code has no member for.
const OK = 0 as Code;
const nameOf = (c: Code) => (c === OK ? "OK" : Code[c]);
const unique = (() => {
  let n = 0;
  return (p: string) => `${p}-${Date.now().toString(36)}-${(n++).toString(36)}`;
})();

const missingUser = () => unique("missing-user");
const orgOf = (t: Target) => (t.kind === "org" ? t.orgId : "");
const existing = (t: Target) => t.kind === "instance" || t.exists;
// Strong enough for any complexity policy the matrix itself sets.
const oldPassword = "Matrix-Passw0rd-old!";
const newPassword = { password: "Matrix-Passw0rd-new!", changeRequired: false };

async function humanWithCode(admin: Clients, orgId: string) {
  const name = unique("h");
  const r = await admin.users.addHumanUser({
    username: name,
    organization: { org: { case: "orgId", value: orgId } },
    profile: { givenName: "Matrix", familyName: name },
    email: { email: `${name}@example.com`, verification: { case: "isVerified", value: true } },
    phone: { phone: "+41791234567", verification: { case: "returnCode", value: {} } },
  });
  return { userId: r.userId, code: r.phoneCode ?? "" };
}

const human = async (admin: Clients, t: Target, opts: { verified?: boolean; password?: string } = {}) =>
  existing(t) ? (await humanUser(admin, { orgId: orgOf(t), ...opts })).userId : missingUser();

async function machine(admin: Clients, t: Target): Promise<string> {
  if (!existing(t)) return missingUser();
  const r = await admin.users.createUser({
    organizationId: orgOf(t),
    userType: { case: "machine", value: { name: "target" } },
  });
  return r.id;
}

const scopeOf = (t: Target) => ({
  resource: {
    resource:
      t.kind === "instance"
        ? { case: "instance" as const, value: true }
        : { case: "organizationId" as const, value: t.orgId },
  },
});
const adminRole = (t: Target) => (t.kind === "instance" ? "IAM_OWNER_VIEWER" : "ORG_USER_MANAGER");

const checkUser = (userId: string) => ({ user: { search: { case: "userId" as const, value: userId } } });
// A session started by the admin (an instance owner) for a user of the target's organization,
// or without a user for the instance.
async function session(admin: Clients, t: Target): Promise<string> {
  if (!existing(t)) return unique("missing-session");
  const checks = t.kind === "org" ? checkUser(await human(admin, t)) : undefined;
  return (await admin.sessions.createSession({ checks })).sessionId;
}
// A person with a password, signed in by the admin: the session token stands for them.
async function signedIn(admin: Clients, orgId: string): Promise<{ userId: string; token: string }> {
  const { userId } = await humanUser(admin, { orgId, password: oldPassword });
  const s = await admin.sessions.createSession({
    checks: { ...checkUser(userId), password: { password: oldPassword } },
  });
  return { userId, token: s.sessionToken };
}
const ownSession = async (admin: Clients, selfId: string) =>
  (await admin.sessions.createSession({ checks: checkUser(selfId) })).sessionId;

// The management API acts on the organization its header names; the settings API on the one
// (or the instance) its request names.
const inOrg = (h: Record<string, string>) => ({ headers: h });
const settingsOf = (t: Target) => ({
  ctx: {
    resourceOwner:
      t.kind === "instance"
        ? { case: "instance" as const, value: true }
        : { case: "orgId" as const, value: t.orgId },
  },
});
const complexity = (minLength: bigint) => ({
  minLength,
  hasUppercase: true,
  hasLowercase: true,
  hasNumber: true,
  hasSymbol: true,
});
const lockout = (max: number) => ({ maxPasswordAttempts: max, maxOtpAttempts: max });
const ignore = (p: Promise<unknown>) => p.catch(() => undefined);
// The organization's own policy: gone, or there with the values an update then changes.
async function ownPolicy(admin: Clients, t: Target, kind: "complexity" | "lockout", present: boolean) {
  if (!existing(t)) return;
  const h = inOrg({ "x-zitadel-orgid": orgOf(t) });
  const m = admin.management;
  if (kind === "complexity") {
    await ignore(m.resetPasswordComplexityPolicyToDefault({}, h));
    if (present) await m.addCustomPasswordComplexityPolicy(complexity(8n), h);
  } else {
    await ignore(m.resetLockoutPolicyToDefault({}, h));
    if (present) await m.addCustomLockoutPolicy(lockout(5), h);
  }
}
const specs: MethodSpec[] = [
  {
    method: userMethod.getUserByID,
    on: "user",
    ...readRule,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.getUserByID(r as never),
    selfAnswer: OK,
  },
  {
    method: userMethod.listAuthenticationMethodTypes,
    on: "user",
    ...readRule,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.listAuthenticationMethodTypes(r as never),
    selfAnswer: OK,
  },
  {
    method: userMethod.deleteUser,
    on: "user",
    ...userRules.delete,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.deleteUser(r as never),
    selfAnswer: OK,
  },
  {
    method: userMethod.setPhone,
    on: "user",
    ...userRules.phone,
    prepare: async (a, t) => ({
      userId: await human(a, t),
      phone: "+41791234599",
      verification: { case: "sendCode", value: {} },
    }),
    call: (c, r) => c.users.setPhone(r as never),
    selfAnswer: Code.FailedPrecondition,
    selfRequest: async (_a, id) => ({
      userId: id,
      phone: "+41791234599",
      verification: { case: "sendCode", value: {} },
    }),
  },
  {
    method: userMethod.verifyPhone,
    on: "user",
    ...userRules.phone,
    prepare: async (a, t) => {
      if (!existing(t)) return { userId: missingUser(), verificationCode: "ABCDEF" };
      const h = await humanWithCode(a, orgOf(t));
      return { userId: h.userId, verificationCode: h.code };
    },
    call: (c, r) => c.users.verifyPhone(r as never),
    selfAnswer: Code.NotFound,
    selfRequest: async (_a, id) => ({ userId: id, verificationCode: "ABCDEF" }),
  },
  {
    method: userMethod.resendPhoneCode,
    on: "user",
    ...userRules.phone,
    prepare: async (a, t) => ({
      userId: await human(a, t, { verified: false }),
      verification: { case: "sendCode", value: {} },
    }),
    call: (c, r) => c.users.resendPhoneCode(r as never),
    selfAnswer: Code.FailedPrecondition,
  },
  {
    method: userMethod.removePhone,
    on: "user",
    ...userRules.phone,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.removePhone(r as never),
    selfAnswer: Code.NotFound,
  },
  {
    method: userMethod.addOTPSMS,
    on: "user",
    ...userRules.addOtpSms,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.addOTPSMS(r as never),
    selfAnswer: Code.FailedPrecondition,
  },
  {
    method: userMethod.removeOTPSMS,
    on: "user",
    ...userRules.removeOtpSms,
    prepare: async (a, t) => {
      const userId = await human(a, t);
      if (existing(t)) await a.users.addOTPSMS({ userId });
      return { userId };
    },
    call: (c, r) => c.users.removeOTPSMS(r as never),
    selfAnswer: Code.NotFound,
  },
  {
    method: userMethod.addPersonalAccessToken,
    on: "user",
    ...userRules.tokens,
    prepare: async (a, t) => ({
      userId: await machine(a, t),
      expirationDate: timestampFromDate(new Date(Date.now() + 86_400_000)),
    }),
    call: (c, r) => c.users.addPersonalAccessToken(r as never),
  },
  {
    method: userMethod.removePersonalAccessToken,
    on: "user",
    ...userRules.tokens,
    prepare: async (a, t) => {
      const userId = await machine(a, t);
      if (!existing(t)) return { userId, tokenId: "1" };
      return { userId, tokenId: (await a.users.addPersonalAccessToken({ userId })).tokenId };
    },
    call: (c, r) => c.users.removePersonalAccessToken(r as never),
  },
  {
    method: userMethod.passwordReset,
    on: "user",
    ...userRules.adminPassword,
    prepare: async (a, t) => ({ userId: await human(a, t), medium: { case: "returnCode", value: {} } }),
    call: (c, r) => c.users.passwordReset(r as never),
  },
  ...(
    [
      [userMethod.lockUser, null],
      [userMethod.unlockUser, "lockUser"],
      [userMethod.deactivateUser, null],
      [userMethod.reactivateUser, "deactivateUser"],
    ] as const
  ).map(
    ([method, before]): MethodSpec => ({
      method,
      on: "user",
      ...userRules.state,
      prepare: async (a, t) => {
        const userId = await human(a, t);
        if (before && existing(t)) await a.users[before]({ userId });
        return { userId };
      },
      call: (c, r) => c.users[method.localName as "lockUser"](r as never),
    }),
  ),
  {
    method: userMethod.addHumanUser,
    on: "org",
    ...userRules.create,
    prepare: async (_a, t) => {
      const name = unique("new");
      return {
        username: name,
        organization: { org: { case: "orgId", value: t.kind === "org" ? t.orgId : "" } },
        profile: { givenName: "New", familyName: name },
        email: { email: `${name}@example.com` },
      };
    },
    call: (c, r) => c.users.addHumanUser(r as never),
  },
  {
    method: userMethod.createUser,
    on: "org",
    ...userRules.create,
    prepare: async (_a, t) => ({
      organizationId: t.kind === "org" ? t.orgId : "",
      userType: { case: "machine", value: { name: "new machine" } },
    }),
    call: (c, r) => c.users.createUser(r as never),
  },
  {
    method: OrganizationService.method.addOrganization,
    on: "instance",
    permission: resourceRules.addOrganization,
    prepare: async () => ({ name: unique("org") }),
    call: (c, r) => c.orgs.addOrganization(r as never),
  },
  {
    method: InternalPermissionService.method.createAdministrator,
    on: "scope",
    permission: resourceRules.orgAdmins,
    prepare: async (a) => ({ userId: (await humanUser(a)).userId }),
    call: (c, r) => c.permissions.createAdministrator(r as never),
  },
  {
    method: InternalPermissionService.method.deleteAdministrator,
    on: "scope",
    permission: resourceRules.orgAdmins,
    prepare: async (a, t) => {
      const userId = (await humanUser(a)).userId;
      if (existing(t))
        await a.permissions.createAdministrator({ userId, ...scopeOf(t), roles: [adminRole(t)] });
      return { userId };
    },
    call: (c, r) => c.permissions.deleteAdministrator(r as never),
  },
  // The users of the organizations where the caller holds user.read (all with it on the
  // instance), and itself; a caller holding it nowhere is refused (ZITADEL shows it only itself,
  // a difference the README states).
  {
    method: userMethod.listUsers,
    on: "list",
    ...readRule,
    self: false,
    list: { refuses: true, scope: "org" },
    prepare: async (a, t) => ({
      queries: [{ query: { case: "inUserIdsQuery", value: { userIds: [await human(a, t)] } } }],
    }),
    call: (c, r) => c.users.listUsers(r as never),
    shown: (res, req) => {
      const ids = (req as { queries: { query: { value: { userIds: string[] } } }[] }).queries[0]?.query.value
        .userIds;
      return (res as { result: { userId: string }[] }).result.some((u) => ids?.includes(u.userId));
    },
  },
  // Set by an administrator, and by anyone who proves the change with the current password or a
  // reset code: the user itself, or another caller holding user.write for its organization.
  {
    method: userMethod.setPassword,
    variant: "without verification",
    on: "user",
    ...userRules.adminPassword,
    prepare: async (a, t) => ({ userId: await human(a, t), newPassword }),
    call: (c, r) => c.users.setPassword(r as never),
  },
  {
    method: userMethod.setPassword,
    variant: "with the current password",
    on: "user",
    ...userRules.ownPassword,
    prepare: async (a, t) => ({
      userId: await human(a, t, { password: oldPassword }),
      newPassword,
      verification: { case: "currentPassword", value: oldPassword },
    }),
    call: (c, r) => c.users.setPassword(r as never),
    // A machine has no password to prove.
    selfAnswer: Code.FailedPrecondition,
  },
  {
    method: userMethod.setPassword,
    variant: "with a reset code",
    on: "user",
    ...userRules.ownPassword,
    prepare: async (a, t) => {
      const userId = await human(a, t);
      const code = existing(t)
        ? (await a.users.passwordReset({ userId, medium: { case: "returnCode", value: {} } }))
            .verificationCode
        : "ABCDEF";
      return { userId, newPassword, verification: { case: "verificationCode", value: code } };
    },
    call: (c, r) => c.users.setPassword(r as never),
    // No reset code was asked for.
    selfAnswer: Code.FailedPrecondition,
  },
  // Starting and changing sessions is a login UI's work: session.write anywhere, whoever the
  // user is (a token, when SetSession is given one, must be the session's; none is given here).
  {
    method: sessionMethod.createSession,
    on: "session",
    permission: sessionRules.write,
    anywhere: true,
    instanceTarget: true,
    prepare: async (a, t) => (t.kind === "org" ? { checks: checkUser(await human(a, t)) } : {}),
    call: (c, r) => c.sessions.createSession(r as never),
    selfRequest: async (_a, id) => ({ checks: checkUser(id) }),
  },
  {
    method: sessionMethod.setSession,
    on: "session",
    permission: sessionRules.write,
    anywhere: true,
    instanceTarget: true,
    missing: Code.FailedPrecondition,
    prepare: async (a, t) => ({ sessionId: await session(a, t), metadata: { matrix: new Uint8Array([1]) } }),
    call: (c, r) => c.sessions.setSession(r as never),
    selfRequest: async (a, id) => ({
      sessionId: await ownSession(a, id),
      metadata: { matrix: new Uint8Array([1]) },
    }),
  },
  // Reading and ending one: its own user, or session.read / session.delete for its user's
  // organization (the instance's, for a session without a user). The creator, who may also read
  // it, is the admin here.
  {
    method: sessionMethod.getSession,
    on: "session",
    permission: sessionRules.read,
    self: true,
    instanceTarget: true,
    prepare: async (a, t) => ({ sessionId: await session(a, t) }),
    call: (c, r) => c.sessions.getSession(r as never),
    selfAnswer: OK,
    selfRequest: async (a, id) => ({ sessionId: await ownSession(a, id) }),
  },
  {
    method: sessionMethod.deleteSession,
    on: "session",
    permission: sessionRules.delete,
    self: true,
    instanceTarget: true,
    prepare: async (a, t) => ({ sessionId: await session(a, t) }),
    call: (c, r) => c.sessions.deleteSession(r as never),
    selfAnswer: OK,
    selfRequest: async (a, id) => ({ sessionId: await ownSession(a, id) }),
  },
  // The sessions a caller created or that are its own, those of users in the organizations where
  // it holds session.read, and all of them with session.read on the instance.
  {
    method: sessionMethod.listSessions,
    on: "list",
    permission: sessionRules.read,
    self: true,
    instanceTarget: true,
    list: { refuses: false, scope: "org" },
    prepare: async (a, t) => ({
      queries: [{ query: { case: "idsQuery", value: { ids: [await session(a, t)] } } }],
    }),
    call: (c, r) => c.sessions.listSessions(r as never),
    shown: (res, req) => {
      const ids = (req as { queries: { query: { value: { ids: string[] } } }[] }).queries[0]?.query.value.ids;
      return (res as { sessions: { id: string }[] }).sessions.some((s) => ids?.includes(s.id));
    },
    selfAnswer: OK,
    selfRequest: async (a, id) => ({
      queries: [{ query: { case: "idsQuery", value: { ids: [await ownSession(a, id)] } } }],
    }),
  },
  // What a login UI reads before it asks for a password: any organization's, or the instance's,
  // once the caller holds policy.read anywhere (as in ZITADEL, whose check is on the caller's
  // own organization).
  ...([settingsMethod.getPasswordComplexitySettings, settingsMethod.getLockoutSettings] as const).map(
    (method): MethodSpec => ({
      method,
      on: "org",
      permission: policyRules.read,
      anywhere: true,
      instanceTarget: true,
      prepare: async (_a, t) => settingsOf(t),
      call: (c, r) => c.settings[method.localName as "getLockoutSettings"](r as never),
    }),
  ),
  ...([mgmt.getDefaultPasswordComplexityPolicy, mgmt.getDefaultLockoutPolicy] as const).map(
    (method): MethodSpec => ({
      method,
      on: "instance",
      permission: policyRules.read,
      anywhere: true,
      prepare: async () => ({}),
      call: (c, r) => c.management[method.localName as "getDefaultLockoutPolicy"](r as never),
    }),
  ),
  // An organization's own policies, in the organization the x-zitadel-orgid header names.
  ...(
    [
      [mgmt.getPasswordComplexityPolicy, policyRules.read, "complexity", true],
      [mgmt.getLockoutPolicy, policyRules.read, "lockout", true],
      [mgmt.addCustomPasswordComplexityPolicy, policyRules.write, "complexity", false],
      [mgmt.updateCustomPasswordComplexityPolicy, policyRules.write, "complexity", true],
      [mgmt.resetPasswordComplexityPolicyToDefault, policyRules.reset, "complexity", true],
      [mgmt.addCustomLockoutPolicy, policyRules.write, "lockout", false],
      [mgmt.updateCustomLockoutPolicy, policyRules.write, "lockout", true],
      [mgmt.resetLockoutPolicyToDefault, policyRules.reset, "lockout", true],
    ] as const
  ).map(
    ([method, permission, kind, present]): MethodSpec => ({
      method,
      on: "org",
      permission,
      prepare: async (a, t) => {
        await ownPolicy(a, t, kind, present);
        const body = method.name.startsWith("Add")
          ? kind === "complexity"
            ? complexity(8n)
            : lockout(5)
          : method.name.startsWith("Update")
            ? kind === "complexity"
              ? complexity(10n)
              : lockout(7)
            : {};
        return { ...body, orgHeader: orgOf(t) || "" };
      },
      call: (c, { orgHeader, ...r }) =>
        c.management[method.localName as "getLockoutPolicy"](
          r as never,
          inOrg({ "x-zitadel-orgid": String(orgHeader) }),
        ),
    }),
  ),
];

const known = new Set<string>(rolePermissions("IAM_OWNER"));

interface Answer {
  readonly code: Code;
  // For a list: whether the target's row is shown.
  readonly shown?: boolean;
}

const answer = (code: Code): Answer => ({ code });
const denied = answer(Code.PermissionDenied);

// The expected answer: authentication, then the permission the descriptor names, then the
// command's rule, as ZITADEL orders them (a caller who holds the permission nowhere learns
// nothing about whether the target exists).
function expected(spec: MethodSpec, caller: Caller, target: Target | "self"): Answer {
  if (!caller.valid) return answer(Code.Unauthenticated);
  const named = methodOptions(spec.method).permission;
  if (known.has(named) && !holdsAnywhere(caller, named as Permission)) return denied;
  const p = spec.permission;
  // Acting on itself, where the rule allows it; otherwise a target like any other in its org.
  if (target === "self") {
    if (spec.self && spec.selfAnswer !== undefined)
      return { code: spec.selfAnswer, ...(spec.list ? { shown: true } : {}) };
    if (spec.list && !spec.list.refuses) return { code: OK, shown: holdsOnInstance(caller, p) };
    return holdsAnywhere(caller, p) ? answer(OK) : denied;
  }
  if (spec.list) {
    if (spec.list.refuses && !holdsAnywhere(caller, p)) return denied;
    const inScope =
      target.kind === "org" && spec.list.scope === "org"
        ? holdsIn(caller, p, target.orgId)
        : holdsOnInstance(caller, p);
    return { code: OK, shown: existing(target) && inScope };
  }
  if (spec.on === "instance" || target.kind === "instance") {
    const q = spec.on === "scope" ? resourceRules.instanceAdmins : p;
    return (spec.anywhere ? holdsAnywhere(caller, q) : holdsOnInstance(caller, q)) ? answer(OK) : denied;
  }
  if (!holdsAnywhere(caller, p)) return denied;
  if (!target.exists) return answer(spec.missing ?? Code.NotFound);
  return spec.anywhere || holdsIn(caller, p, target.orgId) ? answer(OK) : denied;
}

const describeAnswer = (a: Answer) =>
  a.shown === undefined ? nameOf(a.code) : `${nameOf(a.code)} (${a.shown ? "shown" : "not shown"})`;

const outcome = (spec: MethodSpec, req: Request, p: Promise<unknown>): Promise<Answer> =>
  p.then(
    (res) => (spec.shown ? { code: OK, shown: spec.shown(res, req) } : answer(OK)),
    (err) => answer(ConnectError.from(err).code),
  );

const sameAnswer = (a: Answer, b: Answer) => a.code === b.code && a.shown === b.shown;

for (const db of databaseKinds) {
  describe(`authorization matrix (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let orgA: string;
    let orgB: string;
    const callers: Caller[] = [];
    before(async () => {
      // Fixtures are written, and codes sent, far faster than any real caller would: no write
      // or SMS limits here (each has its own tests); and passwords hashed at the lowest cost
      // allowed, since the matrix hashes hundreds and is about who may, not about hashing.
      server = await startTestServer(db, {
        env: {
          LATCHKEY_ARGON2_MEMORY_KIB: "1024",
          LATCHKEY_ARGON2_ITERATIONS: "1",
          LATCHKEY_WRITES_PER_MINUTE: "0",
          LATCHKEY_SMS_LIMIT_PER_USER: "0",
          LATCHKEY_SMS_LIMIT_PER_NUMBER: "0",
          LATCHKEY_SMS_LIMIT_PER_PREFIX: "0",
        },
      });
      admin = clients(server.url, server.adminToken);
      orgA = await newOrg(admin);
      orgB = await newOrg(admin);
      const make = async (
        kind: string,
        scope: "instance" | string | null,
        role: string | null,
        home = orgA,
      ) => {
        const scoped =
          scope === null ? null : scope === "instance" ? { instance: true as const } : { orgId: scope };
        const c = await callerWith(admin, scoped, role ? [role] : [], home);
        const memberships = scope !== null && role ? [{ scope, role }] : [];
        return { kind, token: c.token, valid: true, userId: c.userId, memberships };
      };
      callers.push({ kind: "no token", token: "", valid: false, userId: "", memberships: [] });
      callers.push({ kind: "bad token", token: "not-a-token", valid: false, userId: "", memberships: [] });
      // Tokens of an instance owner that expired or were removed: no role makes them good again.
      const owner = await make("owner", "instance", "IAM_OWNER");
      const soon = await admin.users.addPersonalAccessToken({
        userId: owner.userId,
        expirationDate: timestampFromDate(new Date(Date.now() + 1500)),
      });
      const removed = await admin.users.addPersonalAccessToken({ userId: owner.userId });
      await admin.users.removePersonalAccessToken({ userId: owner.userId, tokenId: removed.tokenId });
      callers.push({ ...owner, kind: "expired PAT", token: soon.token, valid: false });
      callers.push({ ...owner, kind: "removed PAT", token: removed.token, valid: false });
      callers.push(await make("no role", null, null));
      for (const role of instanceRoles) callers.push(await make(`${role} (instance)`, "instance", role));
      for (const role of orgRoles) callers.push(await make(`${role} (org A)`, orgA, role));
      callers.push(await make("ORG_OWNER of org B", orgB, "ORG_OWNER", orgB));
      // Let the short-lived token run out.
      await new Promise((r) => setTimeout(r, Math.max(0, 1600)));
    });
    after(() => server.stop());

    it("covers every implemented method", () => {
      const covered = new Set(specs.map((s) => `${s.method.parent.typeName}/${s.method.name}`));
      const served = implementedMethods(servedServices(server.running.app)).map(
        (m) => `${m.parent.typeName}/${m.name}`,
      );
      assert.ok(served.length > 0);
      assert.deepEqual(
        served.filter((m) => !covered.has(m)),
        [],
        "an implemented method is not in the matrix",
      );
    });

    it("answers every method x caller x target as the permission table says", async () => {
      const orgs = (): Target[] => [
        { kind: "org", label: "same org (A)", orgId: orgA, exists: true },
        { kind: "org", label: "other org (B)", orgId: orgB, exists: true },
        { kind: "org", label: "missing", orgId: "missing-org", exists: false },
      ];
      const targets = (spec: MethodSpec): Target[] => {
        if (spec.on === "instance") return [{ kind: "instance", label: "instance" }];
        if (spec.on === "scope" || spec.instanceTarget) {
          const label = spec.method.parent === SessionService ? "no user yet (instance)" : "instance";
          return [...orgs(), { kind: "instance", label }];
        }
        return orgs();
      };
      const failures: string[] = [];
      let cells = 0;
      const tally = new Map<string, number>();
      const check = (spec: MethodSpec, who: string, want: Answer, got: Answer) => {
        cells++;
        tally.set(nameOf(want.code), (tally.get(nameOf(want.code)) ?? 0) + 1);
        if (!sameAnswer(got, want)) {
          const name = spec.variant ? `${spec.method.name} (${spec.variant})` : spec.method.name;
          failures.push(`${name} by ${who}: ${describeAnswer(got)}, expected ${describeAnswer(want)}`);
        }
      };
      for (const spec of specs) {
        for (const caller of callers) {
          for (const target of targets(spec)) {
            const protocol: Protocol = protocols[cells % protocols.length] ?? "grpc";
            const want = expected(spec, caller, target);
            const prepared = await spec.prepare(admin, target);
            const req =
              spec.on === "scope"
                ? { ...prepared, ...scopeOf(target), roles: [adminRole(target)] }
                : prepared;
            const got = await outcome(spec, req, spec.call(clients(server.url, caller.token, protocol), req));
            check(spec, `${caller.kind} on ${target.label}`, want, got);
          }
        }
        // Self: a machine with no role acting on itself, where the method acts on a user; a
        // person signed in with a session token and no role, on their own session.
        const selfOf =
          spec.on === "user"
            ? await callerWith(admin, null, [], orgA)
            : spec.on === "session" || spec.method === sessionMethod.listSessions
              ? await signedIn(admin, orgA)
              : null;
        if (selfOf) {
          const caller: Caller = {
            kind: spec.on === "user" ? "self" : "self (session token)",
            token: selfOf.token,
            valid: true,
            userId: selfOf.userId,
            memberships: [],
          };
          const req = spec.selfRequest
            ? await spec.selfRequest(admin, selfOf.userId)
            : {
                ...(await spec.prepare(admin, { kind: "org", label: "", orgId: orgA, exists: false })),
                userId: selfOf.userId,
              };
          const want = expected(spec, caller, "self");
          const got = await outcome(spec, req, spec.call(clients(server.url, selfOf.token), req));
          check(spec, caller.kind, want, got);
        }
      }
      console.log(
        `authorization matrix (${db}): ${cells} cells, ${new Set(specs.map((s) => s.method)).size} methods: ${JSON.stringify(Object.fromEntries(tally))}`,
      );
      assert.deepEqual(failures, []);
      // Every kind of answer occurs, so that no column is vacuous.
      for (const code of [OK, Code.Unauthenticated, Code.PermissionDenied, Code.NotFound])
        assert.ok((tally.get(nameOf(code)) ?? 0) > 0, `no cell expects ${nameOf(code)}`);
    });
  });
}
