import assert from "node:assert/strict";
import type { Clients } from "./clients.ts";

let counter = 0;
const unique = () => `${Date.now().toString(36)}${(counter++).toString(36)}`;

// A human user in the given organization (the caller's when none), with a verified phone
// unless told otherwise, and a password when given one.
export async function humanUser(
  c: Clients,
  opts: { orgId?: string; phone?: string; verified?: boolean; language?: string; password?: string } = {},
): Promise<{ userId: string; sequence: bigint; orgId: string; username: string }> {
  const name = `user-${unique()}`;
  const res = await c.users.addHumanUser({
    username: name,
    organization: opts.orgId ? { org: { case: "orgId", value: opts.orgId } } : undefined,
    profile: { givenName: "Test", familyName: name, preferredLanguage: opts.language ?? "" },
    email: { email: `${name}@example.com`, verification: { case: "isVerified", value: true } },
    phone:
      opts.phone === ""
        ? undefined
        : {
            phone: opts.phone ?? "+41791234567",
            verification:
              opts.verified === false
                ? { case: "returnCode", value: {} }
                : { case: "isVerified", value: true },
          },
    passwordType: opts.password
      ? { case: "password", value: { password: opts.password, changeRequired: false } }
      : undefined,
  });
  assert.ok(res.details);
  return {
    userId: res.userId,
    sequence: res.details.sequence,
    orgId: res.details.resourceOwner,
    username: name,
  };
}

// A machine user with the given roles (none: a caller that holds no permission) and a token.
export async function callerWith(
  admin: Clients,
  scope: { instance: true } | { orgId: string } | null,
  roles: string[],
  orgId: string,
): Promise<{ userId: string; token: string }> {
  const created = await admin.users.createUser({
    organizationId: orgId,
    username: `machine-${unique()}`,
    userType: { case: "machine", value: { name: "caller" } },
  });
  if (scope) {
    await admin.permissions.createAdministrator({
      userId: created.id,
      resource: {
        resource:
          "instance" in scope
            ? { case: "instance", value: true }
            : { case: "organizationId", value: scope.orgId },
      },
      roles,
    });
  }
  const pat = await admin.users.addPersonalAccessToken({ userId: created.id });
  return { userId: created.id, token: pat.token };
}

export async function newOrg(admin: Clients): Promise<string> {
  const res = await admin.orgs.addOrganization({ name: `org-${unique()}` });
  return res.organizationId;
}
