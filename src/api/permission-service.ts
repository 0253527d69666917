import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { ResourceType } from "@zitadel/proto/zitadel/internal_permission/v2beta/internal_permission_service_pb.js";
import { InternalPermissionService } from "@zitadel/proto/zitadel/internal_permission/v2beta/internal_permission_service_pb.js";
import type { App } from "../app/app.ts";
import type { AdminScope } from "../app/resources.ts";
import { principalOf } from "./context.ts";
import { ts } from "./convert.ts";
import { unimplemented } from "./unimplemented.ts";

// Latchkey has no projects: administrators live on the instance or on an organization.
function scopeOf(resource: ResourceType | undefined): AdminScope {
  const r = resource?.resource;
  if (r?.case === "instance" && r.value) return { kind: "instance" };
  if (r?.case === "organizationId") return { kind: "org", orgId: r.value };
  if (r?.case === "projectId" || r?.case === "projectGrant")
    throw new ConnectError("Project administrators are not implemented by Latchkey", Code.Unimplemented);
  throw new ConnectError("resource must name the instance or an organization", Code.InvalidArgument);
}

export function internalPermissionService(app: App) {
  return {
    async createAdministrator(req, ctx) {
      const at = await app.resources.createAdministrator(
        principalOf(ctx),
        req.userId,
        scopeOf(req.resource),
        req.roles,
      );
      return { creationDate: ts(at) };
    },
    async deleteAdministrator(req, ctx) {
      const at = await app.resources.deleteAdministrator(principalOf(ctx), req.userId, scopeOf(req.resource));
      return { deletionDate: ts(at) };
    },
    ...unimplemented(InternalPermissionService, ["listAdministrators", "updateAdministrator"]),
  } satisfies ServiceImpl<typeof InternalPermissionService>;
}
