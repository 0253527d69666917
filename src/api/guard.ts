import type { DescMethod } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { App } from "../app/app.ts";
import { requireAnywhere } from "../app/authorize.ts";
import { type Permission, type Principal, rolePermissions } from "../domain/permissions.ts";
import { principalKey } from "./context.ts";
import { type ErrorReporter, toConnectError } from "./errors.ts";
import { methodOptions } from "./services.ts";

const known = new Set<string>(rolePermissions("IAM_OWNER"));
const isPermission = (p: string): p is Permission => known.has(p);

// The permission the method's descriptor names, needed somewhere; the command then checks it
// again in the scope of the resource it touches.
export function requireMethodPermission(principal: Principal, method: DescMethod): void {
  const { permission } = methodOptions(method);
  if (isPermission(permission)) requireAnywhere(principal, permission);
}

// For gRPC, gRPC-web and Connect: the caller goes into the context (before the permission check,
// so that a refused call is still logged with who made it), and every error leaves as a
// ConnectError with ZITADEL's detail and nothing internal.
export function guardInterceptor(app: App, reporter: ErrorReporter): Interceptor {
  return (next) => async (req) => {
    try {
      const principal = await app.authenticate(req.header.get("authorization") ?? undefined);
      req.contextValues.set(principalKey, principal);
      requireMethodPermission(principal, req.method);
      return await next(req);
    } catch (err) {
      throw toConnectError(err, reporter);
    }
  };
}
