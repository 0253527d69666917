import { invalid } from "./errors.ts";

// An organization's rules for passwords and for locking users out, as ZITADEL's password
// complexity and lockout policies hold them.
export interface PasswordComplexityPolicy {
  readonly minLength: number;
  readonly hasUppercase: boolean;
  readonly hasLowercase: boolean;
  readonly hasNumber: boolean;
  readonly hasSymbol: boolean;
}

// 0 switches a limit off, as in ZITADEL.
export interface LockoutPolicy {
  readonly maxPasswordAttempts: number;
  readonly maxOtpAttempts: number;
}

export interface OrgPolicies {
  readonly passwordComplexity: PasswordComplexityPolicy;
  readonly lockout: LockoutPolicy;
}

// Long enough for any passphrase, short enough that hashing one cannot be used to burn CPU.
export const maxPasswordLength = 1024;

// Length counts characters (code points), not bytes, so that a passphrase in any script is
// measured the way its owner counts it.
export function checkPasswordComplexity(policy: PasswordComplexityPolicy, password: string): void {
  const length = [...password].length;
  if (password === "") throw invalid("COMMAND-3n8fs", "Password is empty");
  if (length > maxPasswordLength)
    throw invalid("LK-PW-LONG", `Password must be at most ${maxPasswordLength} characters`);
  if (length < policy.minLength)
    throw invalid("DOMAIN-HuJf6", `Password must be at least ${policy.minLength} characters`);
  if (policy.hasLowercase && !/\p{Ll}/u.test(password))
    throw invalid("DOMAIN-co3Xw", "Password must contain a lowercase letter");
  if (policy.hasUppercase && !/\p{Lu}/u.test(password))
    throw invalid("DOMAIN-VoaRj", "Password must contain an uppercase letter");
  if (policy.hasNumber && !/\p{Nd}/u.test(password))
    throw invalid("DOMAIN-ZBv4H", "Password must contain a number");
  if (policy.hasSymbol && !/[^\p{L}\p{Nd}\s]/u.test(password))
    throw invalid("DOMAIN-ZDLwA", "Password must contain a symbol");
}

// Password hashes Latchkey can verify when a user is imported with one: argon2id in PHC form
// (what Latchkey writes itself) and bcrypt ($2a$, $2b$, $2y$).
export function checkImportedHash(encoded: string): void {
  const argon2id = /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
  const bcrypt = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
  if (!argon2id.test(encoded) && !bcrypt.test(encoded))
    throw invalid("LK-PW-HASH", "Unsupported password hash: give an argon2id (PHC) or bcrypt hash");
}

// Would one more failure reach the limit? Then the failure also locks the user.
export const reachesLimit = (failedSoFar: number, max: number) => max > 0 && failedSoFar + 1 >= max;
