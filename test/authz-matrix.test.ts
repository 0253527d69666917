import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DescMethod } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { InternalPermissionService } from "@zitadel/proto/zitadel/internal_permission/v2beta/internal_permission_service_pb.js";
import { OrganizationService } from "@zitadel/proto/zitadel/org/v2/org_service_pb.js";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { methodOptions, servedServices } from "../src/api/services.ts";
import { readRule } from "../src/app/queries.ts";
import { resourceRules } from "../src/app/resources.ts";
import { userRules } from "../src/app/users.ts";
import { instanceRoles, orgRoles, type Permission, rolePermissions } from "../src/domain/permissions.ts";
import { type Clients, clients, type Protocol, protocols } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser, newOrg } from "./support/fixtures.ts";
import { implementedMethods } from "./support/fuzz.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

// Every implemented method x every kind of caller x every kind of target, with the expected
// answer computed from the permission table (domain/permissions.ts) and each command's rule
// (userRules, readRule, resourceRules): nothing here is a hand-written expectation of who may
// do what. The one hand-written column is what the domain answers a caller acting on itself
// (always a machine user: only machines hold tokens) once authorization has let it through.

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

type Target =
  | { readonly kind: "org"; readonly label: string; readonly orgId: string; readonly exists: boolean }
  | { readonly kind: "instance"; readonly label: "instance" };

type Request = Record<string, unknown>;

interface MethodSpec {
  readonly method: DescMethod;
  // What the call acts on: a user (in an organization), an organization, or the instance.
  readonly on: "user" | "org" | "instance" | "scope";
  readonly permission: Permission;
  readonly self?: boolean;
  // A request that succeeds once authorized; the target made ready for it by the admin.
  prepare(admin: Clients, target: Target): Promise<Request>;
  call(c: Clients, req: Request): Promise<unknown>;
  // For a rule with self: the domain's answer to an authorized machine acting on itself.
  readonly selfAnswer?: { readonly code: Code; readonly request?: (selfId: string) => Request };
}

const userMethod = UserService.method;
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

const human = async (admin: Clients, t: Target, opts: { verified?: boolean } = {}) =>
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

const specs: MethodSpec[] = [
  {
    method: userMethod.getUserByID,
    on: "user",
    ...readRule,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.getUserByID(r as never),
    selfAnswer: { code: OK },
  },
  {
    method: userMethod.listAuthenticationMethodTypes,
    on: "user",
    ...readRule,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.listAuthenticationMethodTypes(r as never),
    selfAnswer: { code: OK },
  },
  {
    method: userMethod.deleteUser,
    on: "user",
    ...userRules.delete,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.deleteUser(r as never),
    selfAnswer: { code: OK },
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
    selfAnswer: {
      code: Code.FailedPrecondition,
      request: (id) => ({ userId: id, phone: "+41791234599", verification: { case: "sendCode", value: {} } }),
    },
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
    selfAnswer: { code: Code.NotFound, request: (id) => ({ userId: id, verificationCode: "ABCDEF" }) },
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
    selfAnswer: { code: Code.FailedPrecondition },
  },
  {
    method: userMethod.removePhone,
    on: "user",
    ...userRules.phone,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.removePhone(r as never),
    selfAnswer: { code: Code.NotFound },
  },
  {
    method: userMethod.addOTPSMS,
    on: "user",
    ...userRules.addOtpSms,
    prepare: async (a, t) => ({ userId: await human(a, t) }),
    call: (c, r) => c.users.addOTPSMS(r as never),
    selfAnswer: { code: Code.FailedPrecondition },
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
    selfAnswer: { code: Code.NotFound },
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
];

// Implemented after the matrix was written, with rules of their own (sessions, settings,
// policies, passwords set by the user): not in it yet. docs/reliability.md lists them.
const notInMatrix = new Set([
  "zitadel.user.v2.UserService/ListUsers",
  "zitadel.user.v2.UserService/SetPassword",
  "zitadel.session.v2.SessionService/CreateSession",
  "zitadel.session.v2.SessionService/SetSession",
  "zitadel.session.v2.SessionService/GetSession",
  "zitadel.session.v2.SessionService/ListSessions",
  "zitadel.session.v2.SessionService/DeleteSession",
  "zitadel.settings.v2.SettingsService/GetPasswordComplexitySettings",
  "zitadel.settings.v2.SettingsService/GetLockoutSettings",
  "zitadel.management.v1.ManagementService/GetPasswordComplexityPolicy",
  "zitadel.management.v1.ManagementService/GetDefaultPasswordComplexityPolicy",
  "zitadel.management.v1.ManagementService/AddCustomPasswordComplexityPolicy",
  "zitadel.management.v1.ManagementService/UpdateCustomPasswordComplexityPolicy",
  "zitadel.management.v1.ManagementService/ResetPasswordComplexityPolicyToDefault",
  "zitadel.management.v1.ManagementService/GetLockoutPolicy",
  "zitadel.management.v1.ManagementService/GetDefaultLockoutPolicy",
  "zitadel.management.v1.ManagementService/AddCustomLockoutPolicy",
  "zitadel.management.v1.ManagementService/UpdateCustomLockoutPolicy",
  "zitadel.management.v1.ManagementService/ResetLockoutPolicyToDefault",
]);

const known = new Set<string>(rolePermissions("IAM_OWNER"));

// The expected answer: authentication, then the permission the descriptor names, then the
// command's rule, as ZITADEL orders them (a caller who holds the permission nowhere learns
// nothing about whether the target exists).
function expected(spec: MethodSpec, caller: Caller, target: Target | "self"): Code {
  if (!caller.valid) return Code.Unauthenticated;
  const named = methodOptions(spec.method).permission;
  if (known.has(named) && !holdsAnywhere(caller, named as Permission)) return Code.PermissionDenied;
  // Acting on itself, where the rule allows it; otherwise a user like any other in its org.
  if (target === "self") {
    if (spec.self && spec.selfAnswer) return spec.selfAnswer.code;
    return holdsAnywhere(caller, spec.permission) ? OK : Code.PermissionDenied;
  }
  if (spec.on === "instance" || (spec.on === "scope" && target.kind === "instance")) {
    const p = spec.on === "scope" ? resourceRules.instanceAdmins : spec.permission;
    return holdsOnInstance(caller, p) ? OK : Code.PermissionDenied;
  }
  if (target.kind !== "org") throw new Error("unreachable");
  if (!holdsAnywhere(caller, spec.permission)) return Code.PermissionDenied;
  if (!target.exists) return Code.NotFound;
  return holdsIn(caller, spec.permission, target.orgId) ? OK : Code.PermissionDenied;
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => OK,
    (err) => ConnectError.from(err).code,
  );

for (const db of databaseKinds) {
  describe(`authorization matrix (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let orgA: string;
    let orgB: string;
    const callers: Caller[] = [];
    before(async () => {
      // Fixtures are written, and codes sent, far faster than any real caller would: no write
      // or SMS limits here (each has its own tests).
      server = await startTestServer(db, {
        env: {
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

    it("covers every implemented method, or says which it leaves out", () => {
      const covered = new Set(specs.map((s) => `${s.method.parent.typeName}/${s.method.name}`));
      const served = implementedMethods(servedServices(server.running.app)).map(
        (m) => `${m.parent.typeName}/${m.name}`,
      );
      assert.deepEqual(
        served.filter((m) => !covered.has(m) && !notInMatrix.has(m)),
        [],
        "an implemented method is neither in the matrix nor listed in notInMatrix",
      );
    });

    it("answers every method x caller x target as the permission table says", async () => {
      const targets = (spec: MethodSpec): Target[] => {
        const orgs: Target[] = [
          { kind: "org", label: "same org (A)", orgId: orgA, exists: true },
          { kind: "org", label: "other org (B)", orgId: orgB, exists: true },
          { kind: "org", label: "missing", orgId: "missing-org", exists: false },
        ];
        if (spec.on === "instance") return [{ kind: "instance", label: "instance" }];
        return spec.on === "scope" ? [...orgs, { kind: "instance", label: "instance" }] : orgs;
      };
      const failures: string[] = [];
      let cells = 0;
      const tally = new Map<string, number>();
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
            const got = await codeOf(spec.call(clients(server.url, caller.token, protocol), req));
            cells++;
            tally.set(nameOf(want), (tally.get(nameOf(want)) ?? 0) + 1);
            if (got !== want)
              failures.push(
                `${spec.method.name} by ${caller.kind} on ${target.label}: ${nameOf(got)}, expected ${nameOf(want)}`,
              );
          }
        }
        // Self: a machine with no role acting on itself, where the method acts on a user.
        if (spec.on === "user") {
          const self = await callerWith(admin, null, [], orgA);
          const caller: Caller = {
            kind: "self",
            token: self.token,
            valid: true,
            userId: self.userId,
            memberships: [],
          };
          const req = spec.selfAnswer?.request?.(self.userId) ?? {
            ...(await spec.prepare(admin, { kind: "org", label: "", orgId: orgA, exists: false })),
            userId: self.userId,
          };
          const want = expected(spec, caller, "self");
          const got = await codeOf(spec.call(clients(server.url, self.token), req));
          cells++;
          tally.set(nameOf(want), (tally.get(nameOf(want)) ?? 0) + 1);
          if (got !== want)
            failures.push(`${spec.method.name} by self: ${nameOf(got)}, expected ${nameOf(want)}`);
        }
      }
      console.log(
        `authorization matrix (${db}): ${cells} cells: ${JSON.stringify(Object.fromEntries(tally))}`,
      );
      assert.deepEqual(failures, []);
      // Every kind of answer occurs, so that no column is vacuous.
      for (const code of [OK, Code.Unauthenticated, Code.PermissionDenied, Code.NotFound])
        assert.ok((tally.get(nameOf(code)) ?? 0) > 0, `no cell expects ${nameOf(code)}`);
    });
  });
}
