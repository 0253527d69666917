import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { RequestChallenges } from "@zitadel/proto/zitadel/session/v2/challenge_pb.js";
import type {
  SessionSchema,
  UserAgent as UserAgentMessage,
} from "@zitadel/proto/zitadel/session/v2/session_pb.js";
import type { Checks, SessionService } from "@zitadel/proto/zitadel/session/v2/session_service_pb.js";
import type { App } from "../app/app.ts";
import type { SessionRequest } from "../app/sessions.ts";
import type { UserAgent } from "../domain/session/events.ts";
import type { SessionState } from "../domain/session/state.ts";
import type { UserState } from "../domain/user/state.ts";
import { principalOf } from "./context.ts";
import { detailsOut, ts } from "./convert.ts";

const notYet = (what: string) =>
  new ConnectError(`${what} is not implemented by Latchkey yet`, Code.Unimplemented);

function durationMs(d: { seconds: bigint; nanos: number } | undefined): number | undefined {
  return d ? Number(d.seconds) * 1000 + Math.trunc(d.nanos / 1e6) : undefined;
}

function userAgentOf(ua: UserAgentMessage | undefined): UserAgent | null {
  if (!ua) return null;
  const header: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(ua.header)) header[k] = [...v.values];
  return { fingerprintId: ua.fingerprintId, ip: ua.ip, description: ua.description, header };
}

function metadataOf(m: { [key: string]: Uint8Array }): Record<string, string> | undefined {
  const entries = Object.entries(m);
  if (entries.length === 0) return undefined;
  return Object.fromEntries(entries.map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
}

// Latchkey checks users, passwords and OTP SMS; the other factors are not built yet.
function requestOf(
  checks: Checks | undefined,
  challenges: RequestChallenges | undefined,
  rest: { metadata: { [key: string]: Uint8Array }; lifetimeMs: number | undefined },
): SessionRequest {
  if (checks?.webAuthN) throw notYet("Passkey and U2F checks");
  if (checks?.idpIntent) throw notYet("Identity provider checks");
  if (checks?.totp) throw notYet("TOTP checks");
  if (checks?.otpEmail) throw notYet("OTP email checks");
  if (challenges?.webAuthN) throw notYet("Passkey and U2F challenges");
  if (challenges?.otpEmail) throw notYet("OTP email challenges");
  const search = checks?.user?.search;
  return {
    user:
      search?.case === "userId"
        ? { userId: search.value }
        : search?.case === "loginName"
          ? { loginName: search.value }
          : undefined,
    password: checks?.password?.password,
    otpSms: checks?.otpSms?.code,
    otpSmsChallenge: challenges?.otpSms ? { returnCode: challenges.otpSms.returnCode } : undefined,
    metadata: metadataOf(rest.metadata),
    lifetimeMs: rest.lifetimeMs,
  };
}

const at = (iso: string | null) => (iso ? ts(new Date(iso)) : undefined);

export function sessionOut(s: SessionState, user: UserState | null): MessageInitShape<typeof SessionSchema> {
  const header = Object.fromEntries(
    Object.entries(s.userAgent?.header ?? {}).map(([k, v]) => [k, { values: [...v] }]),
  );
  return {
    id: s.id,
    creationDate: at(s.createdAt),
    changeDate: at(s.changedAt),
    sequence: BigInt(s.sequence),
    factors:
      s.userId && s.userCheckedAt
        ? {
            user: {
              verifiedAt: at(s.userCheckedAt),
              id: s.userId,
              loginName: user?.username ?? "",
              displayName: user?.profile?.displayName ?? user?.machine?.name ?? "",
              organizationId: s.userOrgId,
            },
            password: s.passwordCheckedAt ? { verifiedAt: at(s.passwordCheckedAt) } : undefined,
            otpSms: s.otpSmsCheckedAt ? { verifiedAt: at(s.otpSmsCheckedAt) } : undefined,
          }
        : undefined,
    metadata: Object.fromEntries(
      Object.entries(s.metadata).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, "base64"))]),
    ),
    userAgent: s.userAgent
      ? {
          fingerprintId: s.userAgent.fingerprintId,
          ip: s.userAgent.ip,
          description: s.userAgent.description,
          header,
        }
      : undefined,
    expirationDate: at(s.expiresAt),
  };
}

const maxListLimit = 1000;
const defaultListLimit = 100;

export function sessionService(app: App) {
  const p = (ctx: HandlerContext) => principalOf(ctx);
  const userOf = async (s: SessionState) => (s.userId ? await app.users.load(s.userId) : null);

  return {
    async createSession(req, ctx) {
      const r = requestOf(req.checks, req.challenges, {
        metadata: req.metadata,
        lifetimeMs: durationMs(req.lifetime),
      });
      const out = await app.sessions.create(p(ctx), { ...r, userAgent: userAgentOf(req.userAgent) });
      return {
        details: detailsOut(out.details),
        sessionId: out.sessionId,
        sessionToken: out.sessionToken,
        challenges: req.challenges ? { otpSms: out.otpSmsCode } : undefined,
      };
    },

    async setSession(req, ctx) {
      const r = requestOf(req.checks, req.challenges, {
        metadata: req.metadata,
        lifetimeMs: durationMs(req.lifetime),
      });
      const out = await app.sessions.set(p(ctx), req.sessionId, r, req.sessionToken);
      return {
        details: detailsOut(out.details),
        sessionToken: out.sessionToken,
        challenges: req.challenges ? { otpSms: out.otpSmsCode } : undefined,
      };
    },

    async getSession(req, ctx) {
      const s = await app.sessions.get(p(ctx), req.sessionId, req.sessionToken);
      return { session: sessionOut(s, await userOf(s)) };
    },

    async listSessions(req, ctx) {
      let userId: string | undefined;
      let creator: string | undefined;
      let ids: string[] | undefined;
      for (const q of req.queries) {
        const query = q.query;
        if (query.case === "idsQuery") ids = [...(ids ?? []), ...query.value.ids];
        else if (query.case === "userIdQuery") userId = query.value.id;
        else if (query.case === "creatorQuery") creator = query.value.id || p(ctx).userId;
        else throw notYet("This session query");
      }
      const limit = Number(req.query?.limit ?? 0) || defaultListLimit;
      const { total, sessions } = await app.sessions.list(p(ctx), {
        userId,
        creator,
        ids,
        offset: Number(req.query?.offset ?? 0),
        limit: Math.min(limit, maxListLimit),
        ascending: req.query?.asc ?? false,
      });
      const out = [];
      for (const s of sessions) out.push(sessionOut(s, await userOf(s)));
      return {
        details: { totalResult: BigInt(total), timestamp: ts(new Date()) },
        sessions: out,
      };
    },

    async deleteSession(req, ctx) {
      return { details: detailsOut(await app.sessions.delete(p(ctx), req.sessionId, req.sessionToken)) };
    },
  } satisfies ServiceImpl<typeof SessionService>;
}
