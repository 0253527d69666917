// A domain error names what went wrong in terms a caller can act on. The `id` is stable:
// ZITADEL's own ids where ZITADEL has that error (so its users recognise them), `LK-...` where
// the error is Latchkey's. The mapping kind -> gRPC code -> HTTP status lives in api/.
export type ErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "permission_denied"
  | "unauthenticated"
  | "resource_exhausted"
  | "aborted"
  | "unavailable"
  | "unimplemented"
  | "internal";

export class DomainError extends Error {
  override readonly name = "DomainError";
  constructor(
    readonly kind: ErrorKind,
    readonly id: string,
    message: string,
    // For a refusal that passes with time (a limit reached): when trying again can succeed.
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export const invalid = (id: string, message: string) => new DomainError("invalid_argument", id, message);
export const notFound = (id: string, message: string) => new DomainError("not_found", id, message);
export const alreadyExists = (id: string, message: string) => new DomainError("already_exists", id, message);
export const precondition = (id: string, message: string) =>
  new DomainError("failed_precondition", id, message);
export const denied = (id: string, message: string) => new DomainError("permission_denied", id, message);
export const unauthenticated = (id: string, message: string) =>
  new DomainError("unauthenticated", id, message);
export const exhausted = (id: string, message: string, retryAfterSeconds: number) =>
  new DomainError("resource_exhausted", id, message, retryAfterSeconds);
