import { type Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { principalKey } from "./context.ts";

export type Protocol = "rest" | "grpc" | "grpc-web" | "connect";

// What is known of one call once it is answered: one log line and the request metrics.
// Never the token, the request body or a code: only who called, what, and how it ended.
export interface RequestRecord {
  readonly requestId: string;
  readonly protocol: Protocol;
  // "zitadel.user.v2.UserService/AddOTPSMS"; "" for a REST path no method serves.
  readonly method: string;
  // The gRPC code as Connect spells it: "ok", "not_found", "permission_denied", ...
  readonly code: string;
  // REST only: the HTTP status answered.
  readonly status?: number;
  readonly latencyMs: number;
  // The authenticated caller's user id; null when authentication failed or never ran.
  readonly callerId: string | null;
}

export type RequestObserver = (record: RequestRecord) => void;

export const requestIdKey = createContextKey<string>("", { description: "request id" });

export const codeName = (code: Code | null): string => (code === null ? "ok" : codeToString(code));

export const elapsedMs = (started: number) => Math.round((performance.now() - started) * 10) / 10;

function protocolOf(contentType: string | null): Protocol {
  if (contentType?.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}

// For gRPC, gRPC-web and Connect; placed first, so it sees what the guard and the handler
// answered, including the errors the guard turned into ConnectErrors.
export function observingInterceptor(observe: RequestObserver): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    let code: Code | null = null;
    try {
      return await next(req);
    } catch (err) {
      code = ConnectError.from(err).code;
      throw err;
    } finally {
      observe({
        requestId: req.contextValues.get(requestIdKey),
        protocol: protocolOf(req.header.get("content-type")),
        method: `${req.service.typeName}/${req.method.name}`,
        code: codeName(code),
        latencyMs: elapsedMs(started),
        callerId: req.contextValues.get(principalKey)?.userId ?? null,
      });
    }
  };
}
