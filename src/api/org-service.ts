import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { OrganizationService } from "@zitadel/proto/zitadel/org/v2/org_service_pb.js";
import type { App } from "../app/app.ts";
import { principalOf } from "./context.ts";
import { detailsOut } from "./convert.ts";
import { unimplemented } from "./unimplemented.ts";
import { humanRequest } from "./user-service.ts";

export function organizationService(app: App) {
  return {
    async addOrganization(req, ctx) {
      const admins = req.admins.map((a) => {
        if (a.userType.case === "userId") return { userId: a.userType.value, roles: a.roles };
        if (a.userType.case === "human") {
          const h = a.userType.value;
          if (h.organization?.org.case)
            throw new ConnectError("An admin's organization is the new one", Code.InvalidArgument);
          return { human: humanRequest(h, { userId: h.userId, username: h.username }), roles: a.roles };
        }
        throw new ConnectError("Each admin needs a user id or a human user", Code.InvalidArgument);
      });
      const r = await app.resources.addOrganization(principalOf(ctx), {
        name: req.name,
        orgId: req.orgId,
        admins,
      });
      return {
        details: detailsOut(r.details),
        organizationId: r.orgId,
        createdAdmins: r.createdAdmins.map((c) => ({ userId: c.userId, phoneCode: c.phoneCode })),
      };
    },
    ...unimplemented(OrganizationService, ["listOrganizations"]),
  } satisfies ServiceImpl<typeof OrganizationService>;
}
