import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { ManagementService } from "@zitadel/proto/zitadel/management_pb.js";
import { ResourceOwnerType } from "@zitadel/proto/zitadel/settings/v2/settings_pb.js";
import { SettingsService } from "@zitadel/proto/zitadel/settings/v2/settings_service_pb.js";
import { expectCode } from "./support/assertions.ts";
import { type Clients, clients, rest, serviceClient } from "./support/clients.ts";
import { databaseKinds } from "./support/databases.ts";
import { callerWith, humanUser, newOrg } from "./support/fixtures.ts";
import { startTestServer, type TestServer } from "./support/server.ts";

const password = "correct horse battery staple";

for (const db of databaseKinds) {
  describe(`organization password and lockout policies (${db})`, () => {
    let server: TestServer;
    let admin: Clients;
    let login: Clients;
    let orgA: string;
    let orgB: string;
    let ownerA: { userId: string; token: string };
    const inOrg = (orgId: string) => ({ headers: { "x-zitadel-orgid": orgId } });
    const management = (token: string) => serviceClient(ManagementService, server.url, token, "grpc");
    const settings = (token: string) => serviceClient(SettingsService, server.url, token, "connect");

    before(async () => {
      server = await startTestServer(db);
      admin = clients(server.url, server.adminToken);
      orgA = await newOrg(admin);
      orgB = await newOrg(admin);
      ownerA = await callerWith(admin, { orgId: orgA }, ["ORG_OWNER"], orgA);
      const client = await callerWith(admin, { instance: true }, ["IAM_LOGIN_CLIENT"], orgA);
      login = clients(server.url, client.token);
    });
    after(() => server.stop());

    // Wrong OTP codes until the user is locked or `tries` have been made; answers how many it took.
    async function wrongCodesUntilLocked(orgId: string, tries: number): Promise<number> {
      const u = await humanUser(admin, { orgId, password });
      await admin.users.addOTPSMS({ userId: u.userId });
      const s = await login.sessions.createSession({
        checks: { user: { search: { case: "userId", value: u.userId } }, password: { password } },
        challenges: { otpSms: { returnCode: true } },
      });
      const wrong = s.challenges?.otpSms === "00000000" ? "11111111" : "00000000";
      for (let i = 1; i <= tries; i++) {
        await expectCode(
          login.sessions.setSession({ sessionId: s.sessionId, checks: { otpSms: { code: wrong } } }),
          Code.InvalidArgument,
        );
        const state = (await admin.users.getUserByID({ userId: u.userId })).user?.state;
        if (state === 4) return i;
      }
      return tries + 1;
    }

    it("locks at the organization's own OTP limit, and at the instance's elsewhere", async () => {
      const added = await management(ownerA.token).addCustomLockoutPolicy(
        { maxPasswordAttempts: 0, maxOtpAttempts: 2 },
        inOrg(orgA),
      );
      assert.equal(added.details?.resourceOwner, orgA);
      await expectCode(
        management(ownerA.token).addCustomLockoutPolicy({ maxOtpAttempts: 3 }, inOrg(orgA)),
        Code.AlreadyExists,
        "ORG-0olDf",
      );
      await expectCode(
        management(ownerA.token).addCustomLockoutPolicy({ maxOtpAttempts: 3 }, inOrg(orgB)),
        Code.PermissionDenied,
      );
      const got = await management(ownerA.token).getLockoutPolicy({}, inOrg(orgA));
      assert.equal(got.isDefault, false);
      assert.equal(got.policy?.maxOtpAttempts, 2n);

      const a = await settings(login.token).getLockoutSettings({
        ctx: { resourceOwner: { case: "orgId", value: orgA } },
      });
      assert.equal(a.settings?.maxOtpAttempts, 2n);
      assert.equal(a.settings?.resourceOwnerType, ResourceOwnerType.ORG);
      const b = await settings(login.token).getLockoutSettings({
        ctx: { resourceOwner: { case: "orgId", value: orgB } },
      });
      assert.equal(b.settings?.maxOtpAttempts, 5n);
      assert.equal(b.settings?.resourceOwnerType, ResourceOwnerType.INSTANCE);

      assert.equal(await wrongCodesUntilLocked(orgA, 5), 2);
      assert.equal(await wrongCodesUntilLocked(orgB, 5), 5);

      await management(ownerA.token).resetLockoutPolicyToDefault({}, inOrg(orgA));
      assert.equal((await management(ownerA.token).getLockoutPolicy({}, inOrg(orgA))).isDefault, true);
      await expectCode(
        management(ownerA.token).resetLockoutPolicyToDefault({}, inOrg(orgA)),
        Code.NotFound,
        "ORG-D4zuz",
      );
    });

    // The management API's REST path for an organization's password complexity policy; the
    // organization is the one the x-zitadel-orgid header names.
    const complexity = (method: string, token: string, orgId: string, minLength?: number) =>
      rest(server.url, method, "/management/v1/policies/password/complexity", {
        token,
        headers: { "x-zitadel-orgid": orgId },
        body: minLength === undefined ? undefined : { minLength },
      });

    it("applies the organization's own password complexity policy, set over REST", async () => {
      const set = await complexity("POST", ownerA.token, orgA, 30);
      assert.equal(set.status, 200, JSON.stringify(set.body));
      assert.equal(set.body.details.resourceOwner, orgA);
      const again = await complexity("PUT", ownerA.token, orgA, 30);
      assert.equal(again.status, 400);
      assert.equal(again.body.details[0].id, "Org-DAs21");

      await expectCode(humanUser(admin, { orgId: orgA, password }), Code.InvalidArgument, "DOMAIN-HuJf6");
      await humanUser(admin, { orgId: orgB, password });
      const settingsA = await rest(server.url, "GET", `/v2/settings/password/complexity?ctx.orgId=${orgA}`, {
        token: login.token,
      });
      assert.equal(settingsA.body.settings.minLength, "30");

      const reset = await complexity("DELETE", ownerA.token, orgA);
      assert.equal(reset.status, 200);
      await humanUser(admin, { orgId: orgA, password });
      const noPermission = await complexity("POST", login.token, orgA, 9);
      assert.equal(noPermission.status, 403);
    });

    // The instance's administrator belongs to another organization: over REST, as over gRPC, the
    // header alone says which organization the call is about.
    it("takes the organization from x-zitadel-orgid over REST, not from the caller", async () => {
      const set = await complexity("POST", server.adminToken, orgB, 40);
      assert.equal(set.status, 200, JSON.stringify(set.body));
      assert.equal(set.body.details.resourceOwner, orgB);
      await expectCode(humanUser(admin, { orgId: orgB, password }), Code.InvalidArgument, "DOMAIN-HuJf6");
      const reset = await complexity("DELETE", server.adminToken, orgB);
      assert.equal(reset.status, 200);
      await humanUser(admin, { orgId: orgB, password });
    });

    // ZITADEL's management API names the permission of each method in its v1 option; the
    // instance's defaults need policy.read like the organization's own policies do.
    it("shows the instance's default policies only to callers holding policy.read", async () => {
      const nobody = await callerWith(admin, null, [], orgA);
      // Every organization role of ZITADEL's reads policies; this instance role does not.
      const userManager = await callerWith(admin, { instance: true }, ["IAM_USER_MANAGER"], orgA);
      for (const caller of [nobody, userManager]) {
        await expectCode(
          management(caller.token).getDefaultLockoutPolicy({}),
          Code.PermissionDenied,
          "AUTH-AWfge",
        );
        const path = "/management/v1/policies/default/password/complexity";
        const refused = await rest(server.url, "GET", path, { token: caller.token });
        assert.equal(refused.status, 403, JSON.stringify(refused.body));
      }
      const viewer = await callerWith(admin, { orgId: orgB }, ["ORG_OWNER_VIEWER"], orgB);
      const shown = await management(viewer.token).getDefaultPasswordComplexityPolicy({});
      assert.equal(shown.policy?.isDefault, true);
      const lockout = await management(ownerA.token).getDefaultLockoutPolicy({});
      assert.equal(lockout.policy?.isDefault, true);
    });
  });
}
