import { Code, ConnectError } from "@connectrpc/connect";

// What a refusal means to the person in front of the console, with the server's own words
// (ZITADEL's message and error id) kept for whoever they ask for help.
export interface Problem {
  readonly title: string;
  readonly detail: string;
  readonly server: string;
  // The token itself was refused: the console must sign in again.
  readonly signedOut: boolean;
}

// grpc-gateway's statuses, which the REST API answers with: shown because people know them.
const statusOf: Partial<Record<Code, number>> = {
  [Code.InvalidArgument]: 400,
  [Code.FailedPrecondition]: 400,
  [Code.OutOfRange]: 400,
  [Code.Unauthenticated]: 401,
  [Code.PermissionDenied]: 403,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.Aborted]: 409,
  [Code.ResourceExhausted]: 429,
  [Code.Unimplemented]: 501,
  [Code.Unavailable]: 503,
};

// `action` completes "could not ...", e.g. "remove OTP SMS".
export function explain(err: unknown, action: string): Problem {
  const e = ConnectError.from(err);
  const server = e.rawMessage;
  const status = statusOf[e.code];
  const tag = status ? ` (${status})` : "";
  const problem = (title: string, detail: string, signedOut = false): Problem => ({
    title: `${title}${tag}`,
    detail,
    server,
    signedOut,
  });
  switch (e.code) {
    case Code.Unauthenticated:
      return problem(
        "Your sign-in is no longer valid",
        "The server refused the token: it may have expired or been removed. Sign in again.",
        true,
      );
    case Code.PermissionDenied:
      return problem(
        "Not allowed",
        `Your token does not grant the permission to ${action}. Ask an administrator for a role that does.`,
      );
    case Code.NotFound:
      return problem(
        "Not found",
        `Could not ${action}: what it needs does not exist (any more). The user may have been deleted.`,
      );
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
    case Code.AlreadyExists:
    case Code.Aborted:
      return problem(`Could not ${action}`, "The server refused the request as it stands:");
    case Code.Unavailable:
      return problem("The server is unavailable", "Nothing was changed. Try again in a moment.");
    default:
      return problem(`Could not ${action}`, "Something went wrong on the way or on the server.");
  }
}
