import { invalid } from "./errors.ts";

// The rules for the text a caller gives Latchkey, in one place. Lengths are ZITADEL's (its API's
// validate rules), counted in characters (code points) as ZITADEL counts runes. Text that names
// or identifies something is one line without control characters; descriptions may span lines.

// C0 and C1 control characters and DEL; a description may also hold tab and line breaks.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
const anyControl = /[\u0000-\u001F\u007F-\u009F]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: as above, less tab and line breaks.
const controlInText = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

const length = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

export interface TextRule {
  // How the field is called in messages, such as "Given name".
  readonly field: string;
  readonly max: number;
  // Set when the field may not be empty (after trimming): the error to answer then.
  readonly required?: { readonly id: string; readonly message: string };
  readonly multiline?: boolean;
}

// Checks one value against its rule; returns it trimmed.
export function text(value: string, rule: TextRule): string {
  const v = value.trim();
  if (rule.required && v === "") throw invalid(rule.required.id, rule.required.message);
  if (length(v) > rule.max)
    throw invalid("LK-TOO-LONG", `${rule.field} must be at most ${rule.max} characters`);
  if ((rule.multiline ? controlInText : anyControl).test(v))
    throw invalid("LK-CONTROL-CHARS", `${rule.field} must not contain control characters`);
  return v;
}

// Ids (of users, organizations, tokens) are 1 to 200 characters, as in ZITADEL; `missing` is the
// error id ZITADEL answers for that method when the id is empty.
export function requireId(value: string, missing: string, what = "User ID"): string {
  if (value.trim() === "") throw invalid(missing, `${what} is missing`);
  if (length(value) > 200) throw invalid("LK-ID200", `${what} must be at most 200 characters`);
  if (anyControl.test(value))
    throw invalid("LK-CONTROL-CHARS", `${what} must not contain control characters`);
  return value;
}

export const rules = {
  username: { field: "Username", max: 200 },
  givenName: {
    field: "Given name",
    max: 200,
    required: { id: "USER-UCej2", message: "Given name and family name are required" },
  },
  familyName: {
    field: "Family name",
    max: 200,
    required: { id: "USER-UCej2", message: "Given name and family name are required" },
  },
  nickName: { field: "Nick name", max: 200 },
  displayName: { field: "Display name", max: 200 },
  preferredLanguage: { field: "Preferred language", max: 10 },
  email: { field: "Email", max: 200, required: { id: "EMAIL-spblu", message: "Email is required" } },
  phone: { field: "Phone number", max: 200 },
  machineName: {
    field: "Machine name",
    max: 200,
    required: { id: "USER-NAME0", message: "Machine name is required" },
  },
  description: { field: "Description", max: 500, multiline: true },
  orgName: {
    field: "Organization name",
    max: 200,
    required: { id: "ORG-mruNY", message: "Name is required" },
  },
  verificationCode: {
    field: "Verification code",
    max: 20,
    required: { id: "COMMAND-eis9R", message: "Verification code is missing" },
  },
  role: { field: "Role", max: 200, required: { id: "MEMBER-4m9ds", message: "A role must not be empty" } },
} as const satisfies Record<string, TextRule>;

// An address with one @, something before it, and a domain with a dot after it; no spaces.
// Whether mail reaches it is for a verification code to show, not for a pattern.
export function email(value: string): string {
  const v = text(value, rules.email);
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) throw invalid("EMAIL-599BI", "Email is invalid");
  return v;
}

// Timestamps a store and JSON can hold: years 1 to 9999, as protobuf's Timestamp allows.
export function date(value: Date, field: string): Date {
  const t = value.getTime();
  if (Number.isNaN(t) || t < -62135596800000 || t > 253402300799999)
    throw invalid("LK-DATE-RANGE", `${field} must be between the years 1 and 9999`);
  return value;
}
