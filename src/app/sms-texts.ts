import type { SmsType } from "../domain/user/events.ts";

// What each SMS says, per language. Short enough for one GSM-7 segment; the German umlauts
// are in the GSM-7 alphabet.
interface Texts {
  readonly phone_verification: (code: string, minutes: number) => string;
  readonly otp: (code: string, minutes: number) => string;
  readonly security_notice: () => string;
}

const texts: Readonly<Record<string, Texts>> = {
  en: {
    phone_verification: (code, minutes) =>
      `Your verification code is ${code}. It expires in ${minutes} minutes.`,
    otp: (code, minutes) => `Your one-time password is ${code}. It expires in ${minutes} minutes.`,
    security_notice: () =>
      "Security notice: one-time passwords by SMS to this number were turned off for your account. " +
      "If this was not you, contact your administrator.",
  },
  de: {
    phone_verification: (code, minutes) =>
      `Ihr Bestätigungscode lautet ${code}. Er ist ${minutes} Minuten gültig.`,
    otp: (code, minutes) => `Ihr Einmalpasswort lautet ${code}. Es ist ${minutes} Minuten gültig.`,
    security_notice: () =>
      "Sicherheitshinweis: Einmalpasswörter per SMS an diese Nummer wurden für Ihr Konto deaktiviert. " +
      "Falls Sie das nicht waren, wenden Sie sich an Ihre Administration.",
  },
};

// "de-CH", "DE" and "de_AT" read as German; a language without texts falls back to English.
export function smsLanguage(preferred: string | undefined): string {
  const base = (preferred ?? "").trim().toLowerCase().split(/[-_]/)[0] ?? "";
  return base in texts ? base : "en";
}

export function smsText(
  type: SmsType,
  language: string,
  params: { readonly code?: string; readonly minutes?: number } = {},
): string {
  const t = texts[language] ?? texts.en!;
  if (type === "security_notice") return t.security_notice();
  return t[type](params.code ?? "", params.minutes ?? 0);
}
