import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { UserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { currentToken } from "./session.ts";

// The console speaks the same API as every other client: Connect (JSON) to this origin, with the
// token as a bearer header.
const bearer: Interceptor = (next) => (req) => {
  const token = currentToken();
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

export const users = createClient(
  UserService,
  createConnectTransport({ baseUrl: window.location.origin, interceptors: [bearer] }),
);

// A client for a token that is not signed in yet: sign-in checks it before keeping it.
export function usersWith(token: string) {
  const withToken: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createClient(
    UserService,
    createConnectTransport({ baseUrl: window.location.origin, interceptors: [withToken] }),
  );
}

export interface UserEvent {
  readonly sequence: number;
  readonly type: string;
  readonly creationDate: string;
  readonly creator: { readonly userId: string; readonly username: string | null };
}

// Latchkey's one console endpoint (ZITADEL's v2 API has no call for a user's history). Its errors
// carry the same code and message as the API's, so they are shown the same way.
export async function userEvents(userId: string, limit = 20): Promise<UserEvent[]> {
  const headers: Record<string, string> = {};
  const token = currentToken();
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(`/ui/api/users/${encodeURIComponent(userId)}/events?limit=${limit}`, {
      headers,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (err) {
    throw new ConnectError(err instanceof Error ? err.message : "network error", Code.Unavailable);
  }
  const body = (await res.json().catch(() => null)) as {
    code?: number;
    message?: string;
    events?: UserEvent[];
  } | null;
  if (!res.ok || !body?.events)
    throw new ConnectError(body?.message ?? `HTTP ${res.status}`, body?.code ?? Code.Unknown);
  return body.events;
}
