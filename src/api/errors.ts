import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorDetailSchema } from "@zitadel/proto/zitadel/message_pb.js";
import { StoreUnavailable } from "../app/ports.ts";
import { DomainError, type ErrorKind } from "../domain/errors.ts";
import { RetryInfoSchema, retryInfo } from "./retry-info.ts";

// The one mapping of error kinds to gRPC codes to HTTP statuses.
const codeOfKind: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  resource_exhausted: Code.ResourceExhausted,
  aborted: Code.Aborted,
  unavailable: Code.Unavailable,
  unimplemented: Code.Unimplemented,
  internal: Code.Internal,
};

// grpc-gateway's table, which ZITADEL's REST gateway answers with.
const httpStatusOfCode: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

export const httpStatusOf = (code: Code) => httpStatusOfCode[code] ?? 500;

// ZITADEL puts the id after the message, and repeats both in a zitadel.v1.ErrorDetail. A
// refusal that passes with time also carries a google.rpc.RetryInfo.
export function connectErrorOf(
  kind: ErrorKind,
  id: string,
  message: string,
  retryAfterSeconds?: number,
): ConnectError {
  return new ConnectError(`${message} (${id})`, codeOfKind[kind], undefined, [
    { desc: ErrorDetailSchema, value: { id, message } },
    ...(retryAfterSeconds === undefined ? [] : [retryInfo(retryAfterSeconds)]),
  ]);
}

// A refusal HTTP has a status of its own for (413 body too large, 415 media type): REST
// answers that status, RPC clients see the code. (Carried in metadata, not a subclass:
// ConnectError's instanceof accepts any ConnectError.)
const httpStatusKey = "x-latchkey-http-status";

export function httpRefusal(message: string, code: Code, httpStatus: number): ConnectError {
  return new ConnectError(message, code, { [httpStatusKey]: String(httpStatus) });
}

export interface ErrorReporter {
  // Logs an unexpected failure and returns the id under which it was logged.
  unexpected(err: unknown): string;
  // Notes that the database could not be used, so that the log says why calls fail.
  unavailable(err: StoreUnavailable): void;
}

// Anything thrown below the API becomes a ConnectError. What we did not foresee becomes
// Internal with only a reference id: SQL, stacks and paths stay in our log.
export function toConnectError(err: unknown, report: ErrorReporter): ConnectError {
  if (err instanceof DomainError) return connectErrorOf(err.kind, err.id, err.message, err.retryAfterSeconds);
  if (err instanceof ConnectError) return err;
  if (err instanceof StoreUnavailable) {
    report.unavailable(err);
    return connectErrorOf("unavailable", "LK-DB-DOWN", "The database is unavailable; try again shortly");
  }
  const ref = report.unexpected(err);
  return connectErrorOf("internal", "LK-INTERNAL", `Internal error; reference ${ref}`);
}

// The REST body grpc-gateway writes for an error; a RetryInfo also becomes Retry-After.
export function restErrorBody(err: ConnectError): {
  status: number;
  body: unknown;
  headers: Record<string, string>;
} {
  const details: unknown[] = err.findDetails(ErrorDetailSchema).map((d) => ({
    "@type": "type.googleapis.com/zitadel.v1.ErrorDetail",
    id: d.id,
    message: d.message,
  }));
  const headers: Record<string, string> = {};
  const [retry] = err.findDetails(RetryInfoSchema);
  if (retry) {
    details.push({
      "@type": "type.googleapis.com/google.rpc.RetryInfo",
      ...(toJson(RetryInfoSchema, retry) as object),
    });
    const seconds = (retry as { retryDelay?: { seconds: bigint } }).retryDelay?.seconds;
    if (seconds !== undefined) headers["retry-after"] = String(seconds);
  }
  const own = Number(err.metadata.get(httpStatusKey));
  return {
    status: own >= 400 && own < 600 ? own : httpStatusOf(err.code),
    body: { code: err.code, message: err.rawMessage, details },
    headers,
  };
}
