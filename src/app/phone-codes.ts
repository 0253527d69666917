import { normalizePhone } from "../domain/phone.ts";
import type { PhoneInput } from "../domain/user/decide.ts";
import type { AppDeps } from "./deps.ts";
import { hashCode, newCode } from "./secrets.ts";

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

// Runs after the write is stored: sends the code, or hands it back when the caller asked for it.
export async function deliverCode(
  deps: AppDeps,
  phone: string,
  code: string | null,
  verification: PhoneVerification,
): Promise<string | undefined> {
  if (code === null) return undefined;
  if (verification === "return") return code;
  try {
    await deps.sms.send({ to: phone, type: "phone_verification", text: `Your verification code is ${code}` });
  } catch (err) {
    // The code is stored and can be resent; a failed delivery does not undo the change.
    deps.log.warn("sms delivery failed", { reason: err instanceof Error ? err.message : String(err) });
  }
  return undefined;
}
