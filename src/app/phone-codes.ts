import { normalizePhone } from "../domain/phone.ts";
import type { PhoneInput } from "../domain/user/decide.ts";
import type { AppDeps } from "./deps.ts";
import type { OutboxChange } from "./ports.ts";
import { hashCode, newCode } from "./secrets.ts";
import { codeSms } from "./sms-outbox.ts";

// How a new or changed phone number gets verified, as the API's oneof says.
export type PhoneVerification = "send" | "return" | "verified";

export interface PhoneRequest {
  readonly phone: string;
  readonly verification: PhoneVerification;
}

export interface PreparedPhone {
  readonly input: PhoneInput;
  readonly code: string | null;
}

export function issueCode(deps: AppDeps, verification: PhoneVerification, now: Date) {
  const code = newCode();
  const issued = {
    hash: hashCode(code),
    expiresAt: new Date(now.getTime() + deps.settings.codeTtlMs),
    returned: verification === "return",
  };
  return { code, issued };
}

export function preparePhone(deps: AppDeps, request: PhoneRequest, now: Date): PreparedPhone {
  const phone = normalizePhone(request.phone, deps.settings.defaultRegion);
  if (request.verification === "verified") return { input: { phone, verified: true }, code: null };
  const { code, issued } = issueCode(deps, request.verification, now);
  return { input: { phone, verified: false, code: issued }, code };
}

// The code goes back to the caller only when asked for.
export const returnedCode = (code: string | null, verification: PhoneVerification): string | undefined =>
  verification === "return" ? (code ?? undefined) : undefined;

// The SMS that carries a code the caller asked to have sent; stored with the events that
// issue the code, so it is sent exactly when the code exists.
export function codeDelivery(
  deps: AppDeps,
  user: { readonly id: string; readonly preferredLanguage?: string | undefined },
  phone: string,
  code: { readonly code: string; readonly expiresAt: Date } | null,
  verification: PhoneVerification,
  now: Date,
): OutboxChange[] {
  if (!code || verification !== "send") return [];
  return [codeSms(deps, user, phone, { ...code, type: "phone_verification" }, now)];
}

// A prepared phone's code with its expiry, for codeDelivery.
export const pendingCode = (p: PreparedPhone | null) =>
  p?.code && !p.input.verified ? { code: p.code, expiresAt: p.input.code.expiresAt } : null;
