// ZITADEL's default role -> permission table (InternalAuthZ.RolePermissionMappings in its
// cmd/defaults.yaml, v4), restricted to the permissions Latchkey checks and to the roles that
// grant any of them outside projects. Instance roles (IAM_*) apply to every organization of the
// instance; organization roles (ORG_*) only to their own organization. IAM_ORG_MANAGER_VIEWER
// is Latchkey's own (a read-only IAM_ORG_MANAGER), kept for the members who hold it.
export type Permission =
  | "user.read"
  | "user.write"
  | "user.credential.write"
  | "user.delete"
  | "org.create"
  | "org.member.write"
  | "iam.member.write"
  | "session.read"
  | "session.write"
  | "session.delete"
  | "policy.read"
  | "policy.write"
  | "policy.delete";

const table: Record<string, readonly Permission[]> = {
  IAM_OWNER: [
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
  ],
  IAM_ORG_MANAGER: [
    "user.read",
    "user.write",
    "user.credential.write",
    "user.delete",
    "org.create",
    "org.member.write",
    "policy.read",
    "policy.write",
    "policy.delete",
    "session.read",
    "session.delete",
  ],
  IAM_LOGIN_CLIENT: [
    "user.read",
    "user.write",
    "user.credential.write",
    "org.member.write",
    "iam.member.write",
    "session.read",
    "session.write",
    "session.delete",
    "policy.read",
  ],
  IAM_USER_MANAGER: ["user.read", "user.write", "user.delete", "session.read", "session.delete"],
  IAM_OWNER_VIEWER: ["user.read", "policy.read", "session.read"],
  IAM_ORG_MANAGER_VIEWER: ["user.read"],
  ORG_OWNER: [
    "user.read",
    "user.write",
    "user.credential.write",
    "user.delete",
    "org.member.write",
    "session.read",
    "session.delete",
    "policy.read",
    "policy.write",
    "policy.delete",
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
  ORG_USER_PERMISSION_EDITOR: ["user.read", "policy.read"],
  ORG_SETTINGS_MANAGER: ["policy.read", "policy.write", "policy.delete"],
  ORG_PROJECT_PERMISSION_EDITOR: ["user.read", "policy.read"],
  ORG_PROJECT_CREATOR: ["policy.read"],
  ORG_USER_SELF_MANAGER: ["policy.read"],
};

export const instanceRoles = Object.keys(table).filter((r) => r.startsWith("IAM_"));
export const orgRoles = Object.keys(table).filter((r) => r.startsWith("ORG_"));

export const rolePermissions = (role: string): readonly Permission[] => table[role] ?? [];

// Where a membership applies: the whole instance, or one organization.
export type Scope = { readonly kind: "instance" } | { readonly kind: "org"; readonly orgId: string };

export interface Membership {
  readonly scope: Scope;
  readonly roles: readonly string[];
}

export interface Principal {
  readonly userId: string;
  readonly orgId: string;
  readonly memberships: readonly Membership[];
  // Set when the caller authenticated with a session token rather than a personal access token.
  readonly sessionId?: string;
}

const grants = (m: Membership, permission: Permission) =>
  m.roles.some((role) => rolePermissions(role).includes(permission));

// Does the principal hold `permission` for resources owned by `orgId`?
export function holds(principal: Principal, permission: Permission, orgId: string): boolean {
  return principal.memberships.some(
    (m) => (m.scope.kind === "instance" || m.scope.orgId === orgId) && grants(m, permission),
  );
}

export function holdsOnInstance(principal: Principal, permission: Permission): boolean {
  return principal.memberships.some((m) => m.scope.kind === "instance" && grants(m, permission));
}

// Holds the permission somewhere at all: decides between 403 and revealing whether a user exists.
export function holdsAnywhere(principal: Principal, permission: Permission): boolean {
  return principal.memberships.some((m) => grants(m, permission));
}

// Where the principal holds `permission`: everywhere (through an instance role), or in these
// organizations only.
export function scopeOf(
  principal: Principal,
  permission: Permission,
): { readonly all: true } | { readonly orgIds: readonly string[] } {
  if (holdsOnInstance(principal, permission)) return { all: true };
  const orgIds = new Set<string>();
  for (const m of principal.memberships)
    if (m.scope.kind === "org" && grants(m, permission)) orgIds.add(m.scope.orgId);
  return { orgIds: [...orgIds] };
}
