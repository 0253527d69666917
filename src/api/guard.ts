import type { DescMethod } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { App } from "../app/app.ts";
import { requireAnywhere } from "../app/authorize.ts";
import { exhausted } from "../domain/errors.ts";
import { type Permission, type Principal, rolePermissions } from "../domain/permissions.ts";
import { principalKey } from "./context.ts";
import { type ErrorReporter, toConnectError } from "./errors.ts";
import type { WriteLimiter } from "./rate-limit.ts";
import { malformedKey } from "./rpc.ts";
import { methodOptions } from "./services.ts";
import { refuseUnstorableText } from "./text.ts";

const known = new Set<string>(rolePermissions("IAM_OWNER"));
const isPermission = (p: string): p is Permission => known.has(p);

export interface Gate {
  readonly app: App;
  readonly writes: WriteLimiter;
}

// An authenticated call: a write counts against the caller's limit, then the permission the
// method's descriptor names is needed somewhere; the command checks it again in the scope of
// the resource it touches.
export function admit(gate: Gate, principal: Principal, method: DescMethod): void {
  const { permission, write } = methodOptions(method);
  if (write) {
    const wait = gate.writes.take(principal.userId);
    if (wait > 0) throw exhausted("LK-RATE", `Too many writes from this caller; retry in ${wait}s`, wait);
  }
  if (isPermission(permission)) requireAnywhere(principal, permission);
}

// For gRPC, gRPC-web and Connect: the caller goes into the context (before the permission check,
// so that a refused call is still logged with who made it), the message is checked for what no
// field may hold, and every error leaves as a ConnectError with ZITADEL's detail and nothing
// internal.
export function guardInterceptor(gate: Gate, reporter: ErrorReporter): Interceptor {
  return (next) => async (req) => {
    try {
      const principal = await gate.app.authenticate(req.header.get("authorization") ?? undefined);
      req.contextValues.set(principalKey, principal);
      admit(gate, principal, req.method);
      const malformed = req.contextValues.get(malformedKey);
      if (malformed) throw malformed;
      if (!req.stream) refuseUnstorableText(req.method.input, req.message);
      return await next(req);
    } catch (err) {
      throw toConnectError(err, reporter);
    }
  };
}
