import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { Code } from "@connectrpc/connect";
import type { App } from "../app/app.ts";
import { invalid } from "../domain/errors.ts";
import { type ErrorReporter, restErrorBody, toConnectError } from "./errors.ts";
import { type RestOutcome, sendJson } from "./rest.ts";

// GET /ui/api/users/{userId}/events?limit=N: the user's latest events, newest first, with only
// type, time, sequence and who wrote them.
//
// Why an endpoint of Latchkey's own: ZITADEL's v2 API has no call for a user's history. ZITADEL
// keeps it in the v1 admin and management APIs (ListEvents, ListUserChanges), which Latchkey does
// not serve, and ListEvents hands out payloads, some of which hold code hashes. This answers the
// one question the console asks, under the same authentication, error mapping and request log
// as every REST call, and to whoever may read the user (GetUserByID's rule: user.read on the
// user's organization, or the user itself).

const path = /^\/ui\/api\/users\/([^/]+)\/events$/;
const limits = { default: 20, max: 100 } as const;

// The user id of an events path, or null for any other path.
export function userEventsPath(pathname: string): string | null {
  const m = path.exec(pathname);
  if (!m?.[1]) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

function limitOf(url: URL): number {
  const raw = url.searchParams.get("limit");
  if (raw === null) return limits.default;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > limits.max)
    throw invalid("LK-EVENTS-LIMIT", `limit must be a whole number from 1 to ${limits.max}`);
  return n;
}

// Personal data: neither browsers nor proxies keep a copy.
const noStore = { "cache-control": "no-store" };

export async function serveUserEvents(
  app: App,
  reporter: ErrorReporter,
  userId: string,
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
  url: URL,
): Promise<RestOutcome> {
  if (req.method !== "GET") {
    sendJson(
      res,
      405,
      { code: Code.Unimplemented, message: "Method Not Allowed", details: [] },
      { ...noStore, allow: "GET" },
    );
    return { status: 405, code: Code.Unimplemented, callerId: null };
  }
  let callerId: string | null = null;
  try {
    // Any valid caller, as ZITADEL's "authenticated" option; the query checks user.read.
    const principal = await app.authenticate(req.headers.authorization);
    callerId = principal.userId;
    const limit = limitOf(url);
    const events = await app.queries.userEvents(principal, userId, limit);
    sendJson(
      res,
      200,
      {
        events: events.map((e) => ({
          sequence: e.sequence,
          type: e.type,
          creationDate: e.createdAt.toISOString(),
          creator: e.creator,
        })),
      },
      noStore,
    );
    return { status: 200, code: null, callerId };
  } catch (err) {
    const connectError = toConnectError(err, reporter);
    const { status, body, headers } = restErrorBody(connectError);
    sendJson(res, status, body, { ...headers, ...noStore });
    return { status, code: connectError.code, callerId };
  }
}
