import { type CountryCode, parsePhoneNumberFromString } from "libphonenumber-js/max";
import { invalid } from "./errors.ts";
import { rules, text } from "./input.ts";

// Normalises a phone number to E.164, reading national formats in `defaultRegion`. Numbers
// that only cost money to text (premium rate) or that no operator holds (a possible number in
// an unassigned range) are refused: they are what SMS pumping sends codes to.
export function normalizePhone(input: string, defaultRegion: string): string {
  const raw = text(input, rules.phone);
  if (raw === "") throw invalid("PHONE-Zt0NV", "Phone number is empty");
  const parsed = parsePhoneNumberFromString(raw, defaultRegion as CountryCode);
  if (!parsed?.isPossible()) throw invalid("PHONE-so0wa", "Phone number is invalid");
  if (!parsed.isValid() || parsed.getType() === undefined)
    throw invalid("LK-PHONE-UNASSIGNED", "Phone number is in a range that is not assigned");
  if (parsed.getType() === "PREMIUM_RATE")
    throw invalid("LK-PHONE-PREMIUM", "Premium-rate phone numbers are not accepted");
  return parsed.number;
}

// The leading digits of an E.164 number that limits count together: a block of numbers that
// one attacker can rent, such as +41 79 12x xx xx for 6 digits.
export function numberPrefix(e164: string, digits: number): string {
  return e164.slice(0, digits + 1);
}
