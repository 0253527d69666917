import {
  checkImportedHash,
  checkPasswordComplexity,
  type PasswordComplexityPolicy,
} from "../domain/policy.ts";
import type { PasswordInput } from "../domain/user/decide.ts";
import type { AppDeps } from "./deps.ts";

// A password as the API carries it: in plain text, or already hashed by the system it comes from.
export type PasswordRequest =
  | { readonly password: string; readonly changeRequired: boolean }
  | { readonly hash: string; readonly changeRequired: boolean };

// Checks a plain password against the organization's policy and hashes it (argon2id, off the
// event loop); an imported hash is only checked for a form Latchkey can verify.
export async function preparePassword(
  deps: AppDeps,
  policy: PasswordComplexityPolicy,
  r: PasswordRequest,
): Promise<PasswordInput> {
  if ("hash" in r) {
    checkImportedHash(r.hash);
    return { encodedHash: r.hash, changeRequired: r.changeRequired };
  }
  checkPasswordComplexity(policy, r.password);
  return { encodedHash: await deps.passwords.hash(r.password), changeRequired: r.changeRequired };
}
