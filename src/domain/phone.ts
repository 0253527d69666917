import { type CountryCode, parsePhoneNumberFromString } from "libphonenumber-js/max";
import { invalid } from "./errors.ts";

// Normalises a phone number to E.164, reading national formats in `defaultRegion`.
export function normalizePhone(input: string, defaultRegion: string): string {
  const raw = input.trim();
  if (raw === "") throw invalid("PHONE-Zt0NV", "Phone number is empty");
  const parsed = parsePhoneNumberFromString(raw, defaultRegion as CountryCode);
  if (!parsed?.isValid()) throw invalid("PHONE-so0wa", "Phone number is invalid");
  return parsed.number;
}
