// The role table is ZITADEL's, as far as Latchkey checks permissions: an administrator who gives
// someone ORG_USER_MANAGER expects what ZITADEL would let them do, no more and no less.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { instanceRoles, orgRoles, type Permission, rolePermissions } from "../src/domain/permissions.ts";

const checked: readonly Permission[] = [
  "user.read",
  "user.write",
  "user.credential.write",
  "user.delete",
  "org.create",
  "org.member.write",
  "iam.member.write",
  "session.read",
  "session.write",
  "session.delete",
  "policy.read",
  "policy.write",
  "policy.delete",
];

// Read off InternalAuthZ.RolePermissionMappings in zitadel/zitadel's cmd/defaults.yaml (a v4
// version, commit 001144819d1d), keeping only the permissions above. Roles that grant none of
// them (the impersonators) and the project roles, which need projects, are left out.
const zitadelDefaults: Record<string, readonly Permission[]> = {
  IAM_OWNER: checked,
  IAM_OWNER_VIEWER: ["user.read", "policy.read", "session.read"],
  IAM_ORG_MANAGER: [
    "org.create",
    "org.member.write",
    "user.read",
    "user.write",
    "user.delete",
    "user.credential.write",
    "policy.read",
    "policy.write",
    "policy.delete",
    "session.read",
    "session.delete",
  ],
  IAM_USER_MANAGER: ["user.read", "user.write", "user.delete", "session.read", "session.delete"],
  IAM_LOGIN_CLIENT: [
    "iam.member.write",
    "org.member.write",
    "user.read",
    "user.write",
    "user.credential.write",
    "policy.read",
    "session.read",
    "session.write",
    "session.delete",
  ],
  ORG_OWNER: [
    "org.member.write",
    "user.read",
    "user.write",
    "user.delete",
    "user.credential.write",
    "policy.read",
    "policy.write",
    "policy.delete",
    "session.read",
    "session.delete",
  ],
  ORG_USER_MANAGER: [
    "user.read",
    "user.write",
    "user.delete",
    "policy.read",
    "session.read",
    "session.delete",
  ],
  ORG_OWNER_VIEWER: ["user.read", "policy.read"],
  ORG_SETTINGS_MANAGER: ["policy.read", "policy.write", "policy.delete"],
  ORG_USER_PERMISSION_EDITOR: ["user.read", "policy.read"],
  ORG_PROJECT_PERMISSION_EDITOR: ["user.read", "policy.read"],
  ORG_PROJECT_CREATOR: ["policy.read"],
  ORG_USER_SELF_MANAGER: ["policy.read"],
};

const sorted = (ps: readonly string[]) => [...ps].sort();

describe("the role table against ZITADEL's defaults", () => {
  for (const [role, permissions] of Object.entries(zitadelDefaults))
    it(`${role} holds exactly ZITADEL's grants among the permissions Latchkey checks`, () => {
      assert.deepEqual(sorted(rolePermissions(role)), sorted(permissions));
    });

  it("knows every one of those roles, and only one of its own (IAM_ORG_MANAGER_VIEWER, read-only)", () => {
    const known = [...instanceRoles, ...orgRoles];
    assert.deepEqual(
      known.filter((r) => !(r in zitadelDefaults)),
      ["IAM_ORG_MANAGER_VIEWER"],
    );
    assert.deepEqual(rolePermissions("IAM_ORG_MANAGER_VIEWER"), ["user.read"]);
    for (const role of Object.keys(zitadelDefaults)) assert.ok(known.includes(role), role);
  });
});
