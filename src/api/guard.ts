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

// Authenticates a call and applies the permission its descriptor names; the command then
// checks the permission again in the scope of the resource it touches.
export async function callerFor(
  app: App,
  method: DescMethod,
  authorization: string | undefined,
): Promise<Principal> {
  const principal = await app.authenticate(authorization);
  const { permission } = methodOptions(method);
  if (isPermission(permission)) requireAnywhere(principal, permission);
  return principal;
}

// For gRPC, gRPC-web and Connect: the caller goes into the context, and every error leaves as
// a ConnectError with ZITADEL's detail and nothing internal.
export function guardInterceptor(app: App, reporter: ErrorReporter): Interceptor {
  return (next) => async (req) => {
    try {
      const principal = await callerFor(app, req.method, req.header.get("authorization") ?? undefined);
      req.contextValues.set(principalKey, principal);
      return await next(req);
    } catch (err) {
      throw toConnectError(err, reporter);
    }
  };
}
