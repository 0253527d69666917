import { randomUUID } from "node:crypto";
import { type DomainError, exhausted } from "../domain/errors.ts";
import type { Decision, NewEvent } from "../domain/events.ts";
import { numberPrefix } from "../domain/phone.ts";
import * as decide from "../domain/user/decide.ts";
import { type SmsFailure, type SmsType, UserEvent } from "../domain/user/events.ts";
import type { UserState } from "../domain/user/state.ts";
import type { AppDeps } from "./deps.ts";
import type { ClaimedMessage, OutboxChange, QuotaExceeded, SendQuota } from "./ports.ts";
import { sealText } from "./secrets.ts";
import { smsLanguage, smsText } from "./sms-texts.ts";

const hourMs = 3600_000;
// A notice that could not leave within a day is no longer news.
const noticeLifetimeMs = 24 * hourMs;

const quotaKind = ["user", "number", "prefix"] as const;

function quotasFor(deps: AppDeps, userId: string, to: string): SendQuota[] {
  const s = deps.settings.sms;
  const limits: [(typeof quotaKind)[number], string, number][] = [
    ["user", userId, s.perUserPerHour],
    ["number", to, s.perNumberPerHour],
    ["prefix", numberPrefix(to, s.prefixDigits), s.perPrefixPerHour],
  ];
  return limits
    .filter(([, , limit]) => limit > 0)
    .map(([kind, value, limit]) => ({ key: `sms:${kind}:${value}`, limit, windowMs: hourMs }));
}

function enqueue(
  deps: AppDeps,
  m: { userId: string; type: SmsType; to: string; language: string; text: string; expiresAt: Date },
  quotas: SendQuota[],
): OutboxChange {
  const id = randomUUID();
  return {
    kind: "enqueue",
    // Field by field, not `{ ...m, id }` (domain/events.ts, inLog, says why).
    message: {
      id,
      userId: m.userId,
      type: m.type,
      to: m.to,
      language: m.language,
      expiresAt: m.expiresAt,
      sealedText: sealText(deps.settings.sms.outboxKey, id, m.text),
    },
    quotas,
  };
}

// A code on its way to a phone: counted towards the sending limits, useless once it expires.
export function codeSms(
  deps: AppDeps,
  user: { readonly id: string; readonly preferredLanguage?: string | undefined },
  to: string,
  code: { readonly code: string; readonly expiresAt: Date; readonly type: "phone_verification" | "otp" },
  now: Date,
): OutboxChange {
  const language = smsLanguage(user.preferredLanguage);
  const minutes = Math.max(1, Math.round((code.expiresAt.getTime() - now.getTime()) / 60_000));
  const text = smsText(code.type, language, { code: code.code, minutes });
  return enqueue(
    deps,
    { userId: user.id, type: code.type, to, language, text, expiresAt: code.expiresAt },
    quotasFor(deps, user.id, to),
  );
}

// When a change ends OTP SMS, the number it used hears of it (unless turned off). Notices are
// not counted towards the limits: a limit must never hide a removal from its owner.
export function removalNotices(
  deps: AppDeps,
  before: UserState,
  events: readonly NewEvent[],
  now: Date,
): OutboxChange[] {
  if (!deps.settings.sms.removalNotice || !before.otpSms || !before.phone) return [];
  if (!events.some((e) => e.type === UserEvent.otpSmsRemoved)) return [];
  const language = smsLanguage(before.profile?.preferredLanguage);
  return [
    enqueue(
      deps,
      {
        userId: before.id,
        type: "security_notice",
        to: before.phone,
        language,
        text: smsText("security_notice", language),
        expiresAt: new Date(now.getTime() + noticeLifetimeMs),
      },
      [],
    ),
  ];
}

const limitTexts: Record<(typeof quotaKind)[number], [string, string]> = {
  user: ["LK-SMS-LIMIT-USER", "Too many codes were sent to this user"],
  number: ["LK-SMS-LIMIT-NUMBER", "Too many codes were sent to this phone number"],
  prefix: ["LK-SMS-LIMIT-PREFIX", "Too many codes were sent to numbers like this one"],
};

export function limitError(err: QuotaExceeded): DomainError {
  const kind = quotaKind.find((k) => err.key.startsWith(`sms:${k}:`)) ?? "user";
  const [id, message] = limitTexts[kind];
  const seconds = Math.ceil(err.retryAfterMs / 1000);
  return exhausted(id, `${message}; try again in ${seconds} seconds`, seconds);
}

export type SmsOutcome =
  | { readonly status: "sent"; readonly provider: string; readonly providerMessageId: string | null }
  | {
      readonly status: "failed" | "expired";
      readonly reason: SmsFailure;
      readonly detail: string;
    };

// The decision and the outbox change that record what became of a claimed message.
export function smsOutcome(
  before: UserState,
  m: ClaimedMessage,
  outcome: SmsOutcome,
): { decision: Decision; settle: OutboxChange } {
  const decision =
    outcome.status === "sent"
      ? decide.recordSmsSent(before, {
          messageId: m.id,
          messageType: m.type,
          provider: outcome.provider,
          providerMessageId: outcome.providerMessageId,
        })
      : decide.recordSmsFailed(before, {
          messageId: m.id,
          messageType: m.type,
          reason: outcome.reason,
          detail: outcome.detail,
        });
  return {
    decision,
    settle: {
      kind: "settle",
      id: m.id,
      claim: m.claim,
      status: outcome.status,
      note: outcome.status === "sent" ? "sent" : `${outcome.reason}: ${outcome.detail}`,
      providerMessageId: outcome.status === "sent" ? outcome.providerMessageId : null,
    },
  };
}
