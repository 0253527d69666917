import { denied, notFound } from "../domain/errors.ts";
import {
  holds,
  holdsAnywhere,
  holdsOnInstance,
  type Permission,
  type Principal,
} from "../domain/permissions.ts";
import { type UserState, userExists } from "../domain/user/state.ts";

export interface Rule {
  readonly permission: Permission;
  // The user may do this to themselves without the permission.
  readonly self: boolean;
}

const noPermission = () => denied("AUTH-AWfge", "No matching permissions found");

// The order matters: a caller who holds the permission nowhere learns nothing about whether
// the user exists (403 either way); one who holds it somewhere may learn a user is missing (404),
// as in ZITADEL; only then does the user's organization decide.
export function authorizeOnUser(principal: Principal, rule: Rule, user: UserState): void {
  if (rule.self && principal.userId === user.id && userExists(user)) return;
  if (!holdsAnywhere(principal, rule.permission)) throw noPermission();
  if (!userExists(user)) throw notFound("COMMAND-4g3xq", "User could not be found");
  if (!holds(principal, rule.permission, user.orgId)) throw noPermission();
}

export function authorizeOnOrg(principal: Principal, permission: Permission, orgId: string): void {
  if (!holds(principal, permission, orgId)) throw noPermission();
}

export function requireAnywhere(principal: Principal, permission: Permission): void {
  if (!holdsAnywhere(principal, permission)) throw noPermission();
}

export function authorizeOnInstance(principal: Principal, permission: Permission): void {
  if (!holdsOnInstance(principal, permission)) throw noPermission();
}
