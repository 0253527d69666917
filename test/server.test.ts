import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { InternalPermissionService } from "@zitadel/proto/zitadel/internal_permission/v2beta/internal_permission_service_pb.js";
import { ManagementService } from "@zitadel/proto/zitadel/management_pb.js";
import { OrganizationService } from "@zitadel/proto/zitadel/org/v2/org_service_pb.js";
import { SessionService } from "@zitadel/proto/zitadel/session/v2/session_service_pb.js";
import { SettingsService } from "@zitadel/proto/zitadel/settings/v2/settings_service_pb.js";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { clients, protocols, rest, serviceClient } from "./support/clients.ts";
import { humanUser } from "./support/fixtures.ts";
import { killAll, latchkeyBin, logLines, spawnLatchkey } from "./support/process.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const implemented = new Set([
  "zitadel.user.v2.UserService/AddHumanUser",
  "zitadel.user.v2.UserService/CreateUser",
  "zitadel.user.v2.UserService/GetUserByID",
  "zitadel.user.v2.UserService/ListUsers",
  "zitadel.user.v2.UserService/DeleteUser",
  "zitadel.user.v2.UserService/SetPhone",
  "zitadel.user.v2.UserService/VerifyPhone",
  "zitadel.user.v2.UserService/ResendPhoneCode",
  "zitadel.user.v2.UserService/RemovePhone",
  "zitadel.user.v2.UserService/AddOTPSMS",
  "zitadel.user.v2.UserService/RemoveOTPSMS",
  "zitadel.user.v2.UserService/ListAuthenticationMethodTypes",
  "zitadel.user.v2.UserService/AddPersonalAccessToken",
  "zitadel.user.v2.UserService/RemovePersonalAccessToken",
  "zitadel.user.v2.UserService/SetPassword",
  "zitadel.user.v2.UserService/PasswordReset",
  "zitadel.user.v2.UserService/LockUser",
  "zitadel.user.v2.UserService/UnlockUser",
  "zitadel.user.v2.UserService/DeactivateUser",
  "zitadel.user.v2.UserService/ReactivateUser",
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
  "zitadel.org.v2.OrganizationService/AddOrganization",
  "zitadel.internal_permission.v2beta.InternalPermissionService/CreateAdministrator",
  "zitadel.internal_permission.v2beta.InternalPermissionService/DeleteAdministrator",
]);

describe("the server", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer("sqlite");
  });
  after(() => server.stop());

  it("answers health and readiness", async () => {
    assert.equal((await fetch(`${server.url}/debug/healthz`)).status, 200);
    const ready = await fetch(`${server.url}/debug/ready`);
    assert.equal(ready.status, 200);
  });

  it("answers Unimplemented, on purpose, for every method it does not serve", async () => {
    for (const service of [
      UserService,
      OrganizationService,
      InternalPermissionService,
      SessionService,
      SettingsService,
      ManagementService,
    ]) {
      for (const method of service.methods) {
        const name = `${service.typeName}/${method.name}`;
        if (implemented.has(name)) continue;
        const c = serviceClient(service, server.url, server.adminToken, "connect") as unknown as Record<
          string,
          (req: unknown) => Promise<unknown>
        >;
        await assert.rejects(c[method.localName]!(create(method.input)), (err: unknown) => {
          assert.equal(ConnectError.from(err).code, Code.Unimplemented, name);
          return true;
        });
      }
    }
  });

  it("creates organizations and administrators, and refuses unknown roles", async () => {
    const admin = clients(server.url, server.adminToken);
    const org = await admin.orgs.addOrganization({
      name: "Acme",
      admins: [
        {
          userType: {
            case: "human",
            value: {
              username: "acme-owner",
              profile: { givenName: "Acme", familyName: "Owner" },
              email: { email: "owner@acme.test" },
              phone: { phone: "+41790000001", verification: { case: "returnCode", value: {} } },
            },
          },
          roles: [],
        },
      ],
    });
    assert.equal(org.details?.sequence, 2n);
    assert.equal(org.details?.resourceOwner, org.organizationId);
    const owner = org.createdAdmins[0];
    assert.match(owner?.phoneCode ?? "", /^[A-Z0-9]{6}$/);
    const rest201 = await rest(server.url, "POST", "/v2/organizations", {
      token: server.adminToken,
      body: { name: "Rest Org" },
    });
    assert.equal(rest201.status, 201, "AddOrganization answers 201, as its descriptor says");
    const user = await humanUser(admin, { orgId: org.organizationId });
    await assert.rejects(
      admin.permissions.createAdministrator({
        userId: user.userId,
        resource: { resource: { case: "organizationId", value: org.organizationId } },
        roles: ["IAM_OWNER"],
      }),
      (err: unknown) => ConnectError.from(err).code === Code.InvalidArgument,
    );
    await admin.permissions.createAdministrator({
      userId: user.userId,
      resource: { resource: { case: "organizationId", value: org.organizationId } },
      roles: ["ORG_USER_MANAGER"],
    });
    await assert.rejects(
      admin.permissions.createAdministrator({
        userId: user.userId,
        resource: { resource: { case: "organizationId", value: org.organizationId } },
        roles: ["ORG_OWNER"],
      }),
      (err: unknown) => ConnectError.from(err).code === Code.AlreadyExists,
    );
    await admin.permissions.deleteAdministrator({
      userId: user.userId,
      resource: { resource: { case: "organizationId", value: org.organizationId } },
    });
    await assert.rejects(
      admin.permissions.deleteAdministrator({
        userId: user.userId,
        resource: { resource: { case: "organizationId", value: org.organizationId } },
      }),
      (err: unknown) => ConnectError.from(err).code === Code.NotFound,
    );
  });

  it("serves every protocol on one port", async () => {
    for (const protocol of protocols) {
      const c = clients(server.url, server.adminToken, protocol);
      const user = await humanUser(c);
      assert.ok(user.userId);
    }
  });
});

describe("the process", () => {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-proc-"));
  after(() => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const env = {
    LATCHKEY_DATABASE_URL: `sqlite:${join(dir, "db.sqlite")}`,
    LATCHKEY_ADMIN_PAT_PATH: join(dir, "secret", "admin.pat"),
  };

  it("writes the admin token once, readable only by its owner, and says where", async () => {
    const p = await spawnLatchkey(env);
    const written = logLines(p.output()).find((l) => l.msg === "admin token written");
    assert.equal(written?.path, env.LATCHKEY_ADMIN_PAT_PATH);
    assert.equal(statSync(env.LATCHKEY_ADMIN_PAT_PATH).mode & 0o777, 0o600);
    const token = readFileSync(env.LATCHKEY_ADMIN_PAT_PATH, "utf8").trim();
    assert.ok(!p.output().includes(token), "the token is never logged");
    p.child.kill("SIGTERM");
    assert.equal(await p.exited(), 0);

    const again = await spawnLatchkey(env);
    assert.doesNotMatch(again.output(), /admin token written/);
    assert.equal(readFileSync(env.LATCHKEY_ADMIN_PAT_PATH, "utf8").trim(), token);
    const r = await rest(again.url, "GET", "/v2/users/1/authentication_methods", { token });
    assert.equal(r.status, 404);
    again.child.kill("SIGTERM");
    assert.equal(await again.exited(), 0);
  });

  it("finishes an in-flight request on SIGTERM, then exits 0", async () => {
    const p = await spawnLatchkey(env);
    const token = readFileSync(env.LATCHKEY_ADMIN_PAT_PATH, "utf8").trim();
    const { port } = new URL(p.url);
    // A request whose body is still arriving when the signal comes.
    const answer = new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port,
          method: "POST",
          path: "/v2/organizations",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.write('{"name":');
      setTimeout(() => {
        p.child.kill("SIGTERM");
        setTimeout(() => req.end('"Drained"}'), 300);
      }, 200);
    });
    assert.equal(await answer, 201);
    assert.equal(await p.exited(), 0);
  });

  it("refuses a bad setting at start, naming it", () => {
    const r = spawnSync(process.execPath, [latchkeyBin, "start"], {
      env: { ...process.env, ...env, LATCHKEY_PORT: "eighty" },
      encoding: "utf8",
    });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /LATCHKEY_PORT/);
  });
});
