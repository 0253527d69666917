import { notFound } from "../domain/errors.ts";
import type { Principal } from "../domain/permissions.ts";
import { emptyResource, foldResource } from "../domain/resource/state.ts";
import { userExists } from "../domain/user/state.ts";
import type { App } from "./app.ts";

// Whoever runs the CLI against the database directly: they could write any row, so they act
// with the instance owner's rights, and their events name SYSTEM as creator so the audit log
// tells them apart from every user.
export const operatorId = "SYSTEM";

export async function operatorPrincipal(app: App): Promise<Principal> {
  const instance = await app.deps.store.getInstance();
  return {
    userId: operatorId,
    orgId: instance?.defaultOrgId ?? "",
    memberships: [{ scope: { kind: "instance" }, roles: ["IAM_OWNER"] }],
  };
}

// The machine user a lost admin token belonged to: the first instance owner that is still a
// machine user (the one the first start created, unless it was deleted).
export async function bootstrapAdminId(app: App): Promise<string> {
  const { store } = app.deps;
  const events = await store.loadEvents(app.instanceId, { type: "instance", id: app.instanceId }, 0);
  const instance = foldResource(emptyResource("instance", app.instanceId), events);
  for (const [userId, roles] of Object.entries(instance.members)) {
    if (!roles.includes("IAM_OWNER")) continue;
    const user = await store.getUser(app.instanceId, userId);
    if (user && userExists(user) && user.kind === "machine") return userId;
  }
  throw notFound("LK-NO-ADMIN", "No machine user owns the instance; name one with --user");
}

// A new personal access token, through the same command the API runs (same checks, same
// event, same read model), only without a caller's token.
export async function issueOperatorToken(app: App, userId: string | undefined, expiresAt: Date | null) {
  const target = userId ?? (await bootstrapAdminId(app));
  const pat = await app.users.addPersonalAccessToken(await operatorPrincipal(app), target, expiresAt);
  return { userId: target, ...pat };
}
