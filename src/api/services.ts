import { type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { http as httpRule } from "@zitadel/proto/google/api/annotations_pb.js";
import { InternalPermissionService } from "@zitadel/proto/zitadel/internal_permission/v2beta/internal_permission_service_pb.js";
import { ManagementService } from "@zitadel/proto/zitadel/management_pb.js";
import { auth_option as v1AuthOption } from "@zitadel/proto/zitadel/options_pb.js";
import { OrganizationService } from "@zitadel/proto/zitadel/org/v2/org_service_pb.js";
import { options as zitadelOptions } from "@zitadel/proto/zitadel/protoc_gen_zitadel/v2/options_pb.js";
import { SessionService } from "@zitadel/proto/zitadel/session/v2/session_service_pb.js";
import { SettingsService } from "@zitadel/proto/zitadel/settings/v2/settings_service_pb.js";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import type { App } from "../app/app.ts";
import { organizationService } from "./org-service.ts";
import { internalPermissionService } from "./permission-service.ts";
import { managementService, settingsService } from "./policy-services.ts";
import { sessionService } from "./session-service.ts";
import { userService } from "./user-service.ts";

export type UnaryHandler = (request: unknown, ctx: HandlerContext) => Promise<unknown>;

export interface ServedService {
  readonly service: DescService;
  readonly handlers: Readonly<Record<string, UnaryHandler>>;
  readonly register: (router: ConnectRouter) => void;
  readonly restPrefix?: string | undefined;
}

// One entry of the list: the typed implementation registers with the router, and the REST
// transcoder calls the same handlers by method name.
function serve<S extends DescService>(service: S, impl: ServiceImpl<S>): ServedService {
  return {
    service,
    handlers: impl as unknown as Record<string, UnaryHandler>,
    register: (router) => router.service(service, impl),
    restPrefix: restPrefixes[service.typeName],
  };
}

// ZITADEL mounts its v1 APIs' REST paths under a prefix their annotations leave out.
export const restPrefixes: Readonly<Record<string, string>> = {
  [ManagementService.typeName]: "/management/v1",
};

// The services Latchkey serves, each typed whole against its descriptor; the Connect router
// and the REST transcoder both read this one list.
export function servedServices(app: App): ServedService[] {
  return [
    serve(UserService, userService(app)),
    serve(OrganizationService, organizationService(app)),
    serve(InternalPermissionService, internalPermissionService(app)),
    serve(SessionService, sessionService(app)),
    serve(SettingsService, settingsService(app)),
    serve(ManagementService, managementService(app)),
  ];
}

export interface MethodOptions {
  // ZITADEL's own option: the permission its gateway checks ("authenticated" = any valid
  // caller) and the HTTP status of success. The v1 APIs (management) name the permission in an
  // older option of their own, `zitadel.v1.auth_option`.
  readonly permission: string;
  readonly successCode: number;
  // Changes something: a GET in the REST mapping, or a Get/List by name, does not.
  readonly write: boolean;
}

const optionCache = new WeakMap<DescMethod, MethodOptions>();

export function methodOptions(method: DescMethod): MethodOptions {
  let cached = optionCache.get(method);
  if (!cached) {
    const o = hasOption(method, zitadelOptions) ? getOption(method, zitadelOptions) : undefined;
    const v1 = hasOption(method, v1AuthOption) ? getOption(method, v1AuthOption) : undefined;
    const verb = hasOption(method, httpRule) ? getOption(method, httpRule).pattern.case : undefined;
    cached = {
      permission: o?.authOption?.permission || v1?.permission || "authenticated",
      successCode: o?.httpResponse?.successCode || 200,
      write: verb !== "get" && !/^(Get|List)/.test(method.name),
    };
    optionCache.set(method, cached);
  }
  return cached;
}
